-- GCRA (generic cell rate algorithm) over all the rate-limit keys of one
-- call, atomically: the call is allowed only when every key allows it, and
-- only then are the keys updated, so a refused call costs no key anything.
--
-- KEYS[i]       the bucket of rule i: it holds the theoretical arrival time
--               (TAT) in microseconds of the Redis clock, or is missing for a
--               full bucket.
-- ARGV[2i-1]    the emission interval of rule i in microseconds (1e6 / rate).
-- ARGV[2i]      the burst of rule i (>= 1).
--
-- Returns {1, 0, 0} when allowed, or {0, i, retry_after_us} when rule i
-- refused, with the microseconds until it would allow one call.
--
-- A key expires when its bucket is full again (TAT - now), so idle
-- principals cost no memory. The Redis clock (TIME) is used, so replicas
-- with skewed clocks agree.
if redis.replicate_commands then
  redis.replicate_commands()
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = now
  local stored = redis.call('GET', KEYS[i])
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  local new_tat = tat + interval
  local allow_at = new_tat - interval * burst
  if now < allow_at then
    return {0, i, allow_at - now}
  end
  tats[i] = new_tat
end
for i = 1, #KEYS do
  local ttl_ms = math.ceil((tats[i] - now) / 1000)
  if ttl_ms < 1 then
    ttl_ms = 1
  end
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl_ms)
end
return {1, 0, 0}
