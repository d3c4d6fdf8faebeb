-- GET a random id out of the ids file (one per line), path prefix from BENCH_PREFIX
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
local prefix = os.getenv("BENCH_PREFIX")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)])
end
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
