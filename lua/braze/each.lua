--- The iterators behind `client:each{...}`: the plain one, a page at a
-- time, and the pipelined one, with every segment's details and size series
-- while the next pages are already on the way.
--
--     for segment, page_no in client:each{ details = true,
--                                          series = { length = 30 },
--                                          concurrency = 16 } do ... end
--
-- How the pipelined one runs: list pages are requested ahead of the page the
-- caller is on (at most `AHEAD` pages ahead, and none after the first short page);
-- as each page arrives, its segments' details and series requests join the
-- queue. List pages go first, then per-segment calls in page order, all
-- through one scheduler runner: one pool of at most `concurrency`
-- transfers, paced by the rate-limit window.
--
-- A page is handed out only when every call of it has finished, so a
-- failure raises before any segment of its page was yielded: `err.page` is
-- where to resume (`client:each{ ..., page = err.page }`), and a resumed
-- loop neither loses nor repeats a segment. `err.segment_id` names the
-- segment whose call failed.
--
-- Memory: at most AHEAD + 1 pages (the caller's and those ahead) are held.
-- @module braze.each
local url = require("braze.url")
local errors = require("braze.errors")
local scheduler = require("braze.scheduler")
local options = require("braze.options")

local M = {}

local format, error, setmetatable, type = string.format, error, setmetatable, type

--- Pages listed ahead of the one the caller is on.
M.AHEAD = 2
--- The largest `page` (and `max_pages`): page arithmetic stays exact in a
-- double up to 2^53.
M.MAX_PAGE = 2 ^ 52

--- Segments in a full list page: a shorter page is the last.
local PAGE_SIZE = options.PAGE_SIZE
local MAX_PAGES = options.default("max_pages")

--- The iterator behind `client:each{...}` with `details`, `series` or
-- `concurrency`. `client` is the client's private state; `opts` are checked.
---@return function iterator
---@return nil
---@return nil
---@return table closer (a to-be-closed value for Lua 5.4's generic for)
function M.pipelined(client, opts)
  local runner = scheduler.runner(client, opts.concurrency or 8)
  local first = opts.page or 0
  local limit = first + (opts.max_pages or MAX_PAGES) -- pages [first, limit) may be listed
  local series_query
  if opts.series then
    local s = opts.series
    series_query = function(id)
      return url.query("segment_id", id, "length", format("%d", s.length), "ending_at", s.ending_at)
    end
  end

  local pages = {}            -- page number -> { segments=, left=, err=, short= }
  local next_list = first     -- the next page to request
  local last = nil            -- the first short page, once listed
  local current, index = first, 0
  local failed = nil          -- the error raised, raised again if called again
  local finished = false      -- the last segment was given: nil from now on
  assert(limit <= 2 * M.MAX_PAGE, "braze: each: page + max_pages beyond 2^53")

  local function fail(page_no, err, segment_id)
    local page = pages[page_no]
    if page and not page.err then
      err.page = page_no
      err.segment_id = segment_id
      page.err = err
    end
  end

  local function segment_done(job, body, err)
    local page = pages[job.page_no]
    if not page then return end -- a page given up
    if body then job.segment[job.field] = body else fail(job.page_no, err, job.segment.id) end
    page.left = page.left - 1
  end

  local function list_done(job, body, err)
    local page_no = job.page_no
    local page = pages[page_no]
    if not page then return end
    if last and page_no > last then -- listed speculatively, past the end
      pages[page_no] = nil
      return
    end
    if not body then return fail(page_no, err) end
    local segments = body.segments -- an array of objects: braze.shape checked it
    page.segments = segments
    if #segments < PAGE_SIZE and (last == nil or page_no < last) then
      last = page_no
      for k in pairs(pages) do if k > last then pages[k] = nil end end
      -- Pages past the end that have not gone out yet never will.
      runner:cancel(function(queued) return queued.list_page ~= nil and queued.list_page > last end)
    end
    for i = 1, #segments do
      local seg = segments[i]
      local id = seg.id
      if opts.details or series_query then
        if type(id) ~= "string" or id == "" then
          page.left = 0
          return fail(page_no, errors.new({ kind = "decode", status = 200, endpoint = "/segments/list",
            message = format("segment %d of page %d has no \"id\"", i, page_no) }))
        end
      end
      if opts.details then
        page.left = page.left + 1
        runner:add({ path = "/segments/details", query = url.query("segment_id", id),
          page_no = page_no, segment = seg, field = "details", done = segment_done })
      end
      if series_query then
        page.left = page.left + 1
        runner:add({ path = "/segments/data_series", query = series_query(id),
          page_no = page_no, segment = seg, field = "series", done = segment_done })
      end
    end
  end

  -- Request list pages up to AHEAD beyond the caller's, none past the end.
  local function list_ahead()
    while next_list < limit and next_list <= current + M.AHEAD and (last == nil or next_list <= last) do
      pages[next_list] = { left = 0 }
      runner:add({ path = "/segments/list", urgent = true, page_no = next_list, list_page = next_list,
        query = url.query("page", format("%d", next_list), "sort_direction", opts.sort_direction),
        done = list_done })
      next_list = next_list + 1
    end
  end

  local function close()
    runner:close()
    pages = {}
  end
  -- Ending the loop early (break, an error in its body) drops what is in
  -- flight: the closer is a to-be-closed value in Lua 5.4's generic for,
  -- and its __gc runs when the iterator is dropped (5.2, 5.3). The
  -- iterator holds it (an upvalue) so it is not collected while in use.
  local closer = setmetatable({ close = close }, { __close = close, __gc = close })

  -- The error that ends the loop: `raised` (an error object, or whatever a
  -- step raised) as an error object with the page to resume at.
  local function stop_with(raised)
    if errors.is(raised) then
      failed = raised
    else
      failed = errors.new({ kind = "network", endpoint = "/segments/list",
        message = "each: " .. tostring(raised) }, client.redact)
    end
    if failed.page == nil then failed.page = current end
    closer.close()
    error(failed, 3)
  end

  local function iterate()
    if failed then error(failed, 2) end
    if finished then return nil end
    while true do
      local page = pages[current]
      if page and page.err then
        failed = page.err
        closer.close()
        error(failed, 2)
      elseif page and page.segments and page.left == 0 then
        if index < #page.segments then
          index = index + 1
          return page.segments[index], current
        end
        pages[current] = nil
        if current == last then
          finished = true
          closer.close()
          return nil
        end
        current, index = current + 1, 0
      elseif not page and current >= limit then
        closer.close()
        failed = format("braze: each: stopped after max_pages (%d) pages; pass a larger "
          .. "max_pages to go on", opts.max_pages or MAX_PAGES)
        error(failed, 2)
      else
        if not client.conn then
          closer.close()
          failed = format("braze: each: client is closed (next page would be %d)", current)
          error(failed, 2)
        end
        list_ahead()
        -- A step that raises (a sleep callback, a transport outside the
        -- contract) ends the loop with an error object, never half-done.
        local ok, more = scheduler.protect(client, runner.step, runner)
        if not ok then stop_with(more) end
        if not more then
          -- Nothing left to run, and the page is not there: a bug, not a
          -- state to wait in. Say so instead of spinning.
          stop_with(format("page %d never arrived (internal error)", current))
        end
      end
    end
  end

  return iterate, nil, nil, closer
end

--- The iterator behind a plain `client:each{...}`: a page is requested only
-- when the previous one is used up. `client` is the client's private state;
-- `opts` (`page`, `max_pages`, `sort_direction`) are checked.
---@return function iterator
function M.plain(client, opts)
  local next_page = opts.page or 0
  local max_pages = opts.max_pages or MAX_PAGES
  local fetched, items, i, page_no, done = 0, nil, 0, nil, false
  return function()
    while true do
      if items and i < #items then
        i = i + 1
        return items[i], page_no
      end
      if done then return nil end
      if not client.conn then
        error(format("braze: each: client is closed (next page would be %d)", next_page), 2)
      end
      if fetched >= max_pages then
        error(format("braze: each: stopped after max_pages (%d) pages; pass a larger "
          .. "max_pages to go on", max_pages), 2)
      end
      local res, err = scheduler.request(client, "/segments/list",
        url.query("page", format("%d", next_page), "sort_direction", opts.sort_direction))
      if not res then
        err.page = next_page -- where to resume: client:each{ page = err.page }
        error(err, 2)
      end
      local segments = res.segments -- an array: braze.shape checked it
      items, i, page_no = segments, 0, next_page
      fetched, next_page = fetched + 1, next_page + 1
      if #segments < PAGE_SIZE then done = true end
    end
  end
end

return M
