"""A deterministic byte tokenizer: one token per 4 bytes of UTF-8, same text -> same ids.

Token ids are kept as the raw bytes themselves (4 bytes per token) rather than as a list of
ints, so that a 1,000-token prompt is tokenized, hashed per KV block and detokenized without
a Python-level loop over tokens; that is what lets the virtual-time runner keep up with
thousands of requests per second. Detokenizing is the identity, so a client that sends a
previous answer back (multi-turn chat) reproduces the same token ids and really hits the
prefix cache.

Text is encoded with "surrogatepass": JSON string escapes can spell lone surrogates, which
strict UTF-8 rejects, and every str a client can send must tokenize, deterministically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TOKEN_BYTES = 4
_ERRORS = "surrogatepass"

_FILLER = (
    b"The quick brown fox jumps over the lazy dog while the simulated engine streams "
    b"deterministic words so that tests can compare answers byte for byte. Lorem ipsum "
    b"dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
    b"labore et dolore magna aliqua. "
)
# Whole tokens only, so every generated token is valid 4-byte ASCII text.
FILLER = _FILLER[: len(_FILLER) - len(_FILLER) % TOKEN_BYTES]
_FILLER_TOKENS = len(FILLER) // TOKEN_BYTES
_FILLER_REPEATED = FILLER * 2


def encode(text: str) -> bytes:
    """Token bytes of `text`: UTF-8 padded with spaces to a whole number of tokens."""
    data = text.encode(errors=_ERRORS)
    pad = -len(data) % TOKEN_BYTES
    return data + b" " * pad if pad else data


def count(text: str) -> int:
    """The number of tokens `encode(text)` yields, without building it."""
    return -(-len(text.encode(errors=_ERRORS)) // TOKEN_BYTES)


def token_ids(tokens: bytes) -> list[int]:
    """Integer ids (for /tokenize): each 4-byte token read as a little-endian number."""
    return [
        int.from_bytes(tokens[i : i + TOKEN_BYTES], "little")
        for i in range(0, len(tokens), TOKEN_BYTES)
    ]


def decode(tokens: bytes) -> str:
    return tokens.decode(errors="replace")


def filler(seed: int, start: int, n: int) -> bytes:
    """Output tokens `start`..`start+n` of the deterministic answer for `seed`."""
    out = bytearray()
    pos = (seed + start) % _FILLER_TOKENS
    remaining = n
    while remaining > 0:
        take = min(remaining, _FILLER_TOKENS)
        out += _FILLER_REPEATED[pos * TOKEN_BYTES : (pos + take) * TOKEN_BYTES]
        remaining -= take
    return bytes(out)


def render_chat(messages: Iterable[Mapping[str, object]]) -> str:
    """A chat template: each turn starts on a token boundary so shared history shares tokens."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(
                str(part.get("text", "")) for part in content if isinstance(part, Mapping)
            )
        turn = f"<|{message.get('role', 'user')}|>\n{content}\n"
        data = turn.encode(errors=_ERRORS)
        parts.append(turn + " " * (-len(data) % TOKEN_BYTES))
    parts.append("<|assistant|>\n  ")
    return "".join(parts)
