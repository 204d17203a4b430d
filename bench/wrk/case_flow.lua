-- Case actions over many distinct cases: open (as the buyer) -> counter-offer (seller)
-- -> accept (buyer), whose refund the ledger gateway settles at once. Any connection takes
-- the next pending step of any case; otherwise it opens a case on the next unused order.
-- Orders are BENCH_PREFIX_<n>, n from BENCH_FIRST; each wrk thread takes its own range.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local prefix = os.getenv("BENCH_PREFIX")
local first = tonumber(os.getenv("BENCH_FIRST") or "0")
local per_thread = tonumber(os.getenv("BENCH_PER_THREAD") or "1000000")
local full = os.getenv("BENCH_FULL_REFUND")
local counter = os.getenv("BENCH_COUNTER_AMOUNT")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"

local pending = {}  -- steps ready to send, {case_id, step}, learnt from the case in each answer
local next_order = nil

local function open_body(order_id)
  return '{"order_id":"' .. order_id .. '","lines":[{"line_id":"l1"}],"reason":"not_received",'
    .. '"description":"It never came.","request":{"kind":"refund","amount":{"amount":'
    .. full .. ',"currency":"USD"}}}'
end

function request()
  if next_order == nil then next_order = first + id * per_thread end
  local job = table.remove(pending)
  if job == nil then
    local order_id = prefix .. "_" .. next_order
    next_order = next_order + 1
    return wrk.format("POST", "/v1/cases", nil, open_body(order_id))
  end
  if job[2] == "offer" then
    return wrk.format("POST", "/v1/cases/" .. job[1] .. "/offers", nil,
      '{"kind":"refund","amount":{"amount":' .. counter .. ',"currency":"USD"},"acting_as":"seller"}')
  end
  return wrk.format("POST", "/v1/cases/" .. job[1] .. "/accept", nil,
    '{"acting_as":"buyer"}')
end

function response(status, headers, body)
  count_status(status)
  if status < 200 or status >= 300 then return end
  local case_id = body:match('"id":"(case_[%w]+)"')
  local state = body:match('"status":"([%w_]+)"')
  if case_id == nil then return end
  if state == "awaiting_seller" then
    table.insert(pending, {case_id, "offer"})
  elseif state == "awaiting_buyer" then
    table.insert(pending, {case_id, "accept"})
  elseif state == "refund_pending" or state == "resolved" then
    resolved = (resolved or 0) + 1
  end
end
