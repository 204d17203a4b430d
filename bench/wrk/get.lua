-- GET BENCH_PATH with BENCH_ID replaced by a random one of BENCH_COUNT ids BENCH_PREFIX_<n>.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local path = os.getenv("BENCH_PATH")
local prefix = os.getenv("BENCH_PREFIX") or ""
local count = tonumber(os.getenv("BENCH_COUNT") or "1")
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

function request()
  local id = prefix .. "_" .. math.random(0, count - 1)
  return wrk.format("GET", (path:gsub("BENCH_ID", id)))
end
