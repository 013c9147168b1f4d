---@meta
--- The types of what lua-braze hands back, for lua-language-server: the
-- decoded answers of the three endpoints and the error object. This file
-- holds annotations only (nothing in it runs); `require("braze.types")`
-- returns an empty table. spec/unit/types_spec.lua checks every class here
-- against what the client returns at run time, and scripts/reference.lua
-- renders them in docs/reference.md.
--
-- Braze documents only `message` as always present; a field typed without
-- `?` is one every answer Braze and the mock send carries. The library
-- itself guarantees the arrays (`segments`, `data`): a success without
-- them is a `"decode"` error.

--- The values of the module `braze` that are not functions. `instances`
-- maps each Braze instance name to its REST base URL (so `pairs` lists
-- instances only); `braze.instances.suggest(text)` names the instance a
-- near miss such as `us01`, `US-1` or `iad-01` meant, or gives nil.
---@class braze
---@field _VERSION string the library's name and version, e.g. "lua-braze 0.1.0"
---@field null braze.null JSON `null` in decoded answers (e.g. a details' `description`)
---@field instances table<string, string> instance name -> REST base URL, e.g. "US-01" -> "https://rest.iad-01.braze.com"
---@field errors table the error module, `braze.errors` (below)
---@field Client braze.Client the client class, whose methods are below

--- JSON `null` as the decoder gives it: one light userdata, equal to
-- `braze.null` (and to lua-cjson's `cjson.null`). Compare with `==`.
---@class braze.null: lightuserdata

--- One segment of a `/segments/list` page.
---@class braze.Segment
---@field id string the segment id (what `details` and `data_series` take)
---@field name string
---@field analytics_tracking_enabled boolean
---@field tags string[]

--- A segment as `client:each` yields it: with `details = true` it carries
-- its details, with `series = {...}` its size series.
---@class braze.EachSegment: braze.Segment
---@field details? braze.SegmentDetails its `/segments/details` answer (`each{ details = true }`)
---@field series? braze.DataSeries its `/segments/data_series` answer (`each{ series = {...} }`)

--- The answer of `client:list`: up to 100 segments (fewer on the last page).
---@class braze.SegmentPage
---@field segments braze.Segment[]
---@field message string "success"

--- The answer of `client:details`.
---@class braze.SegmentDetails
---@field name string
---@field description string|braze.null `braze.null` when the segment has none
---@field text_description string the segment's filters, as Braze's dashboard words them
---@field tags string[]
---@field teams string[]
---@field created_at string ISO 8601 date and time, e.g. "2020-01-01T00:12:34.567Z"
---@field updated_at string ISO 8601 date and time
---@field message string "success"

--- One day of a size series.
---@class braze.DataPoint
---@field time string ISO 8601 date, e.g. "2024-06-30"
---@field size integer estimated segment size that day (exact: sizes past 2^32 stay integers)

--- The answer of `client:data_series`: one point a day, oldest first.
---@class braze.DataSeries
---@field data braze.DataPoint[]
---@field message string "success"

--- A rate-limit window as the `X-RateLimit-*` headers gave it: a field is
-- nil when no header gave it.
---@class braze.RateLimit
---@field limit? integer requests the window allows
---@field remaining? integer requests left in the window (the lowest seen)
---@field reset? integer when the window resets, in Unix seconds

--- A run-time failure: the second value of a failed call, or what `each`
-- raises. `tostring(err)` gives one line naming the endpoint, the status,
-- the message, the attempts and the request id. The API key never appears
-- in any field. Kinds: `"http"` (a non-2xx status), `"rate_limited"` (429,
-- or a wait longer than `max_wait`), `"network"`, `"timeout"`, `"decode"`
-- (a 2xx whose body is not the JSON object expected), `"too_large"` (a
-- body or header over its limit), `"closed"` (the client was closed while
-- the call waited to retry), `"interrupted"` (Ctrl-C, in a program that
-- asked for it).
---@class braze.Error
---@field kind "http"|"rate_limited"|"network"|"timeout"|"decode"|"too_large"|"closed"|"interrupted"
---@field message string Braze's `message` when the body had one, else a description
---@field endpoint string the API path, e.g. "/segments/list"
---@field attempts integer how many requests the call made
---@field status? integer HTTP status, when there was a response
---@field errors? string[] Braze's `errors` array, when present
---@field request_id? string the response's `X-Request-Id`, for support tickets
---@field retry_after? number seconds to wait before trying again (rate limits)
---@field rate_limit? braze.RateLimit a copy of the window when the error was made
---@field position? integer byte of the body where decoding failed (`"decode"`)
---@field page? integer the page `each` was on: resume with `client:each{ page = err.page }`
---@field segment_id? string the segment whose request failed (`each` with details or series)

return {}
