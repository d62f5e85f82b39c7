-- wrk script: POST the Spartakus README report under a distinct, random cluster id per request
-- (random as `uuidgen` makes them, so the store's indexes see keys in no particular order).
-- Usage: wrk -t2 -c32 -d10s -s bench/post.lua http://127.0.0.1:18080/api/v1
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local script_dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local f = assert(io.open(script_dir .. "../common/tests/fixtures/spartakus-readme.json"))
local body = f:read("*a")
f:close()
local prefix, suffix = body:match("^(.-)2f9c93d3%-156c%-47aa%-8802%-578ffca9b50e(.*)$")
local counter = 0
local thread_tag = 0

function setup(thread)
  thread_tag = thread_tag + 1
  thread:set("tag", thread_tag)
end

-- Every thread of every run draws other ids: seeded from the kernel, not from the clock.
function init(args)
  local urandom = assert(io.open("/dev/urandom", "rb"))
  local a, b, c, d = urandom:read(4):byte(1, 4)
  urandom:close()
  math.randomseed(((a * 256 + b) * 256 + c) * 128 + d % 128)
end

function request()
  counter = counter + 1
  local id = string.format("%08x-%04x-4000-8000-%012x", math.random(0, 0x7fffffff), tag or 0, counter)
  return wrk.format(nil, nil, nil, prefix .. id .. suffix)
end
