-- luacheck configuration: `luacheck lua/ policies/ spec/`
std = "luajit"
max_line_length = 100
codes = true
self = false -- phase methods often do not need `self`
exclude_files = { "spec/e2e/node_modules/**", "build/**" }

-- policies and the host library: no globals at all (they get the host as an argument)
files["policies/"] = { std = "luajit", globals = {}, read_globals = {} }
files["lua/"] = { std = "luajit", globals = {} }

-- specs: busted's globals
files["spec/"] = { std = "+busted" }
