-- POST the body file as a new resource each time
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/fhir+json"
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
