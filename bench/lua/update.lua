-- PUT a changed body to a random existing id: every request makes a new version
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local template = f:read("*a")
f:close()
local prefix = os.getenv("BENCH_PREFIX")
local counter = 0
math.randomseed(os.time() + 7)
request = function()
  counter = counter + 1
  local id = ids[math.random(#ids)]
  local body = template:gsub("__ID__", id):gsub("__N__", tostring(counter))
  return wrk.format("PUT", prefix .. id, {["Content-Type"] = "application/fhir+json"}, body)
end
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
