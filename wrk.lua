wrk.method = "POST"
wrk.body = '{"model":"chat","messages":[{"role":"user","content":"hello there"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
