-- The editor types of lua/braze/types.lua against what the client really
-- returns: the real client talks to braze-mock, and every answer and error
-- must fit its class: every field present at run time is declared, every
-- field declared without `?` is present, and each value has its declared
-- type. The classes are read from the annotations themselves (not a copy).
local helpers = require("spec.support.helpers")
local braze = require("braze")

local TYPES_FILE = helpers.root .. "/lua/braze/types.lua"

-- classes[name] = { fields = { [name] = { type =, optional = } }, order = {...} }
local function parse_classes(text)
  local classes, current = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local name, parent = line:match("^%-%-%-@class%s+([%w_.]+)%s*:?%s*([%w_.]*)")
    if name then
      current = { fields = {}, order = {}, parent = parent ~= "" and parent or nil }
      classes[name] = current
    elseif line:match("^%-%-%-@field") then
      assert(current, "a ---@field before any ---@class: " .. line)
      local field, optional, ftype = line:match("^%-%-%-@field%s+([%w_]+)(%??)%s+(%S+)")
      assert(field, "cannot read: " .. line)
      current.fields[field] = { type = ftype, optional = optional == "?" }
      current.order[#current.order + 1] = field
    elseif not line:match("^%-%-") then
      current = nil
    end
  end
  return classes
end

local classes = parse_classes(assert(helpers.read_file(TYPES_FILE)))

-- Split a type at its top-level `|` (none of these types nest a union).
local function alternatives(t)
  local out = {}
  for alt in t:gmatch("[^|]+") do out[#out + 1] = alt end
  return out
end

local function is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v == math.floor(v)
end

local conforms -- (value, type text, where, problems)

-- Does a table fit class `name`? Appends what does not to `problems`.
local function fits_class(value, name, where, problems)
  local class = classes[name]
  -- A class with a parent declared here has the parent's fields too.
  local parent = class.parent and classes[class.parent]
  if parent then
    local merged = { fields = {}, order = {} }
    for _, c in ipairs({ parent, class }) do
      for _, key in ipairs(c.order) do
        merged.fields[key] = c.fields[key]
        merged.order[#merged.order + 1] = key
      end
    end
    class = merged
  end
  if type(value) ~= "table" then
    problems[#problems + 1] = string.format("%s: expected a %s table, got %s", where, name, type(value))
    return
  end
  for key, v in pairs(value) do
    local field = class.fields[key]
    if not field then
      problems[#problems + 1] = string.format("%s.%s is present at run time but not declared in %s",
        where, tostring(key), name)
    else
      conforms(v, field.type, where .. "." .. key, problems)
    end
  end
  for _, key in ipairs(class.order) do
    if not class.fields[key].optional and value[key] == nil then
      problems[#problems + 1] = string.format("%s.%s is declared non-optional in %s but absent",
        where, key, name)
    end
  end
end

-- One alternative of a type: nil when `value` fits it, else why not.
local function fits_one(value, t)
  local function unless(ok, why) if not ok then return why end end
  if t:sub(-2) == "[]" then
    if type(value) ~= "table" or (next(value) ~= nil and value[1] == nil) then return "not an array" end
    local problems = {}
    for i, item in ipairs(value) do conforms(item, t:sub(1, -3), "[" .. i .. "]", problems) end
    return problems[1]
  end
  local literal = t:match('^"(.*)"$')
  if literal then return unless(value == literal, "not " .. t) end
  if t == "string" or t == "boolean" or t == "number" or t == "table" then
    return unless(type(value) == t, "not a " .. t)
  end
  if t == "integer" then return unless(is_integer(value), "not an integer") end
  if t == "braze.null" then return unless(value == braze.null, "not braze.null") end
  if t:match("^table<") then return unless(type(value) == "table", "not a table") end
  -- The client class is declared in init.lua, with its methods.
  if t == "braze.Client" then return unless(value == braze.Client, "not braze.Client") end
  if classes[t] then
    local problems = {}
    fits_class(value, t, "", problems)
    return problems[1]
  end
  error("types_spec does not know the type " .. t .. ": teach fits_one")
end

conforms = function(value, t, where, problems)
  local whys = {}
  for _, alt in ipairs(alternatives(t)) do
    local why = fits_one(value, alt)
    if not why then return end
    whys[#whys + 1] = why
  end
  problems[#problems + 1] = string.format("%s = %s does not fit %s (%s)", where, tostring(value), t,
    table.concat(whys, "; "))
end

local function assert_fits(value, name)
  local problems = {}
  fits_class(value, name, name, problems)
  assert(#problems == 0, table.concat(problems, "\n"))
end

describe("lua/braze/types.lua", function()
  it("declares the response classes and the error", function()
    for _, name in ipairs({ "braze.Segment", "braze.SegmentPage", "braze.SegmentDetails",
      "braze.DataSeries", "braze.DataPoint", "braze.Error", "braze.RateLimit" }) do
      assert(classes[name], name .. " is not declared")
    end
    assert.same({ "id", "name", "analytics_tracking_enabled", "tags" }, classes["braze.Segment"].order)
    assert.equal("braze.Segment[]", classes["braze.SegmentPage"].fields.segments.type)
    assert.equal("braze.DataPoint[]", classes["braze.DataSeries"].fields.data.type)
    assert.equal("string|braze.null", classes["braze.SegmentDetails"].fields.description.type)
    assert.equal("integer", classes["braze.DataPoint"].fields.size.type)
    assert.is_true(classes["braze.Error"].fields.page.optional)
    assert.is_true(classes["braze.Error"].fields.segment_id.optional)
  end)

  it("types braze.Error's kind as exactly the kinds of the README's Errors table", function()
    local readme = assert(helpers.read_file(helpers.root .. "/README.md"))
    local row = assert(readme:match("\n| `kind` |([^\n]*)"), "README has no `kind` row in its Errors table")
    local documented = {}
    for kind in row:gmatch('`"([%w_]+)"`') do documented[#documented + 1] = kind end
    local typed = {}
    for kind in classes["braze.Error"].fields.kind.type:gmatch('"([%w_]+)"') do typed[#typed + 1] = kind end
    table.sort(documented)
    table.sort(typed)
    assert.is_true(#typed >= 8)
    assert.same(documented, typed)
  end)

  it("is a module that loads and holds nothing", function()
    assert.same({}, dofile(TYPES_FILE))
  end)

  it("finds what it checks: an undeclared or a missing field, a wrong type", function()
    local problems = {}
    fits_class({ id = "x", name = "n", analytics_tracking_enabled = true, tags = {}, extra = 1 },
      "braze.Segment", "s", problems)
    fits_class({ id = "x", analytics_tracking_enabled = true, tags = {} }, "braze.Segment", "s", problems)
    fits_class({ time = "2024-01-01", size = 1.5 }, "braze.DataPoint", "p", problems)
    fits_class({ kind = "nope", message = "m", endpoint = "/e", attempts = 1 }, "braze.Error", "e", problems)
    assert.equal(4, #problems)
    assert.matches("s.extra is present at run time but not declared", problems[1], 1, true)
    assert.matches("s.name is declared non-optional", problems[2], 1, true)
    assert.matches("p.size = 1.5 does not fit integer", problems[3], 1, true)
    assert.matches("e.kind = nope does not fit", problems[4], 1, true)
  end)
end)

describe("the types against the client's answers (braze-mock)", function()
  local mock
  setup(function() mock = helpers.start_mock({ segments = 12 }) end)
  teardown(function() if mock then mock:stop() end end)
  before_each(function() mock:reset() end)

  local function client(opts)
    opts = opts or {}
    opts.api_key = opts.api_key or mock.api_key
    opts.endpoint = opts.endpoint or mock.url
    if opts.max_retries == nil then opts.max_retries = 0 end
    return braze.new(opts)
  end

  it("list, details (with and without a description), data_series and rate_limit fit their classes", function()
    local c = client()
    finally(function() c:close() end)
    local page = assert(c:list{})
    assert.equal(12, #page.segments)
    assert_fits(page, "braze.SegmentPage")
    local nulls = 0
    for _, i in ipairs({ 1, 5 }) do -- segment 5 has no description
      local details = assert(c:details(page.segments[i].id))
      if details.description == braze.null then nulls = nulls + 1 end
      assert_fits(details, "braze.SegmentDetails")
    end
    assert.equal(1, nulls)
    local series = assert(c:data_series{ segment_id = page.segments[1].id, length = 3 })
    assert.equal(3, #series.data)
    assert_fits(series, "braze.DataSeries")
    assert_fits(assert(c:rate_limit()), "braze.RateLimit")
  end)

  it("each's segments fit braze.EachSegment, plain and with details and series", function()
    local c = client()
    finally(function() c:close() end)
    local n = 0
    for segment, page_no in c:each() do
      assert.equal(0, page_no)
      assert_fits(segment, "braze.Segment")
      n = n + 1
    end
    assert.equal(12, n)
    n = 0
    for segment in c:each{ details = true, series = { length = 2 }, concurrency = 2 } do
      assert.is_table(segment.details)
      assert.equal(2, #segment.series.data)
      assert_fits(segment, "braze.EachSegment")
      n = n + 1
    end
    assert.equal(12, n)
    -- The subclass is needed: a pipelined segment is not a plain braze.Segment.
    local problems = {}
    fits_class(select(1, c:each{ details = true }()), "braze.Segment", "s", problems)
    assert.matches("s.details is present at run time but not declared", problems[1], 1, true)
  end)

  it("the module's values fit the class braze", function()
    local class = classes.braze
    for _, name in ipairs(class.order) do
      assert(braze[name] ~= nil, "braze." .. name .. " is declared but absent")
    end
    assert_fits({ _VERSION = braze._VERSION, null = braze.null, instances = braze.instances,
      errors = braze.errors, Client = braze.Client }, "braze")
  end)

  it("every kind of error the mock can cause fits braze.Error", function()
    local seen = {}
    local function check(err, kind)
      assert.is_true(braze.errors.is(err), tostring(err))
      assert.equal(kind, err.kind, tostring(err))
      assert_fits(err, "braze.Error")
      seen[#seen + 1] = err
    end
    local c = client()
    finally(function() c:close() end)

    local _, err = c:details("00000000-0000-4000-8000-000000000000") -- 400 with an errors array
    assert.is_table(err.errors)
    check(err, "http")
    mock:fault{ type = "401" }
    _, err = c:list{}
    check(err, "http")
    mock:fault{ type = "malformed" }
    _, err = c:list{}
    assert.is_number(err.position)
    check(err, "decode")

    local impatient = client({ max_wait = 1 })
    finally(function() impatient:close() end)
    mock:fault{ type = "429", retry_after = 100 }
    _, err = impatient:list{}
    assert.equal(100, err.retry_after)
    check(err, "rate_limited")

    mock:reset()
    local quick = client({ timeout = 0.3 })
    finally(function() quick:close() end)
    mock:fault{ type = "hang" }
    _, err = quick:list{}
    check(err, "timeout")

    local small = client({ max_body = 100 })
    finally(function() small:close() end)
    _, err = small:list{}
    check(err, "too_large")

    local probe = assert(require("socket").bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close() -- nothing listens there now
    local nowhere = client({ endpoint = "http://127.0.0.1:" .. port, connect_timeout = 2 })
    finally(function() nowhere:close() end)
    _, err = nowhere:list{}
    check(err, "network")
  end)

  it("each's errors carry page (plain) and page and segment_id (pipelined), both declared", function()
    local c = client()
    finally(function() c:close() end)
    mock:fault{ type = "500", path = "/segments/list" }
    local ok, err = pcall(function() for _ in c:each() do end end)
    assert.is_false(ok)
    assert.equal(0, err.page)
    assert_fits(err, "braze.Error")

    mock:reset()
    local page = assert(c:list{})
    local victim = page.segments[3].id
    mock:fault{ type = "403", segment_id = victim }
    ok, err = pcall(function() for _ in c:each{ details = true, concurrency = 2 } do end end)
    assert.is_false(ok)
    assert.equal(0, err.page)
    assert.equal(victim, err.segment_id)
    assert_fits(err, "braze.Error")
  end)
end)
