"""The Endpoint Picker data plane: tokenway's pipeline behind Envoy, over ext_proc."""
