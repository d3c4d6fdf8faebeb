-- GET each URL of the file named by BENCH_URLS in turn (one per line)
local urls = {}
for line in io.lines(os.getenv("BENCH_URLS")) do urls[#urls + 1] = line end
local i = 0
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
