-- POST a small JSON body to BENCH_PATH (the ceiling app's one-INSERT endpoint).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = '{"note": "one row"}'
wrk.headers["Content-Type"] = "application/json"
