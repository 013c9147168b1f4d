--- The report's HTML page: one self-contained document (its style and a
-- few lines of script inline; a Content-Security-Policy that forbids any
-- request), a header of facts, the ten biggest risers and fallers with
-- larger sparklines, and a table with a row per segment.
--
-- Every piece of data goes through `html.escape`, in text and attributes
-- alike; the script reads only the table. Optional end tags (`</td>`,
-- `</tr>`) are left out, as HTML allows, to keep 10,000 rows small.
-- Without script the table keeps the order it was written in; with it,
-- clicking a column heading (or Enter on it) sorts by that column.
--
-- The rows are laid out as grids of fixed tracks with `content-visibility:
-- auto`, not as an HTML table layout: a table's column widths depend on
-- every row, so Chromium laid out all 10,000 rows before showing any (about
-- 2 s); a row of its own size is laid out only when it scrolls into view.
-- @module braze.cli.page
local html = require(((...):gsub("page$", "html")))
local svg = require(((...):gsub("page$", "svg")))

local M = {}

local format, concat = string.format, table.concat
local escape, number = html.escape, html.number

M.STYLE = [[
:root{--bg:#fff;--fg:#1b1f24;--mute:#5b636e;--line:#d8dde3;--head:#f3f5f7;--up:#1a7f37;
--down:#cf222e;--flat:#8c959f;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#9198a1;
--line:#30363d;--head:#161b22;--up:#3fb950;--down:#f85149;--flat:#6e7681}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1400px;padding:1rem;background:var(--bg);color:var(--fg);
font:.875rem/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin:1.2rem 0 .5rem}
.facts{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;margin:0}.facts div{min-width:8rem}
.facts dt{color:var(--mute);font-size:.8rem}.facts dd{margin:0;font-weight:600;
overflow-wrap:anywhere}
.movers{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:0 2rem}
.movers ol{list-style:none;margin:0;padding:0}
.movers li{display:grid;grid-template-columns:1fr auto;gap:0 .5rem;padding:.35rem 0;
border-bottom:1px solid var(--line)}
.movers a{color:inherit;overflow-wrap:anywhere}.movers .big{grid-column:1/3;width:100%;height:40px}
.movers .n{color:var(--mute);font-size:.85rem;grid-column:1/3}
.scroll{overflow-x:auto}
#segments{display:block;min-width:60rem;font-variant-numeric:tabular-nums}
#segments thead,#segments tbody{display:block}
#segments tr{display:grid;align-items:center;border-bottom:1px solid var(--line);
grid-template-columns:minmax(0,2.5fr) minmax(0,1.4fr) minmax(0,1fr) 6.5rem 5.5rem 5rem 6.5rem 6.5rem
8.5rem 6.8rem 6.8rem}
#segments thead tr{background:var(--head)}
@media (min-width:1000px){.scroll{overflow:visible}#segments thead{position:sticky;top:0;z-index:1}}
#segments tbody tr{content-visibility:auto;contain-intrinsic-size:auto 44px}
th,td{padding:.3rem .5rem;text-align:left;overflow-wrap:break-word}th{font-weight:600}
td:first-child{white-space:pre-line;unicode-bidi:plaintext}
#segments :is(th,td):nth-child(n+4):nth-child(-n+8){text-align:right}
#segments td:nth-child(n+10){color:var(--mute);white-space:nowrap}th{white-space:nowrap}
#segments td:nth-child(-n+3):nth-child(n+2){color:var(--mute);font-size:.85rem}
svg{display:block;fill:none;stroke:var(--flat);stroke-width:1.5;stroke-linejoin:round}
td svg{width:7.5rem;height:1.5rem}polyline{vector-effect:non-scaling-stroke}
.up svg,.up .p,.up td:nth-child(6){stroke:var(--up);color:var(--up)}
.down svg,.down .p,.down td:nth-child(6){stroke:var(--down);color:var(--down)}
.mark{font-size:.75rem;border:1px solid var(--line);border-radius:3px;padding:0 .3rem;
color:var(--mute)}
.js th[data-t]{cursor:pointer}.js th[data-t]:after{content:" \2195";color:var(--mute)}
.js th[aria-sort=ascending]:after{content:" \2191"}.js th[aria-sort=descending]:after{content:" \2193"}
.jsonly{display:none}.js .jsonly{display:inline}
footer{color:var(--mute);font-size:.8rem;margin-top:1rem}
@media (max-width:640px){body{padding:.5rem}
#segments :is(th,td):is(:nth-child(2),:nth-child(3),:nth-child(5),:nth-child(7),:nth-child(8),
:nth-child(n+10)){display:none}#segments{min-width:0}th,td{padding:.3rem}td svg{width:64px}
#segments tr{grid-template-columns:minmax(0,1fr) 6rem 4.5rem 72px}}
@media print{:root{font-size:9px}body{max-width:none;padding:0;color:#000;background:#fff}
#segments{min-width:0}.movers .big{height:30px}.scroll{overflow:visible}tr,li{break-inside:avoid}
.jsonly{display:none!important}.js th[data-t]:after{content:none}
.movers{grid-template-columns:1fr 1fr}}
]]

-- Sorting by a column: numbers compared digit by digit (exact past 2^53),
-- cells without a number (no data) always last, ties kept in page order.
M.SCRIPT = [[
(function(){
var t=document.getElementById("segments");if(!t)return;
var b=t.tBodies[0],hs=t.tHead.rows[0].cells;
document.documentElement.className+=" js";
function key(c,n){var v=c.getAttribute("data-v");if(v===null)v=c.textContent;
if(!n)return v.toLowerCase();v=v.replace(/[^0-9.\-]/g,"");return /\d/.test(v)?v:null}
function cmp(a,b){var na=a.charAt(0)=="-",nb=b.charAt(0)=="-";if(na!=nb)return na?-1:1;
var s=na?-1:1;a=a.replace("-","").split(".");b=b.replace("-","").split(".");
var x=a[0].replace(/^0+/,""),y=b[0].replace(/^0+/,"");
if(x.length!=y.length)return s*(x.length-y.length);if(x!=y)return s*(x<y?-1:1);
x=a[1]||"";y=b[1]||"";while(x.length<y.length)x+="0";while(y.length<x.length)y+="0";
return x==y?0:s*(x<y?-1:1)}
function sortBy(i){var h=hs[i],n=h.getAttribute("data-t")=="n",s=h.getAttribute("aria-sort"),
up=s?s=="descending":!n;
var rows=[].slice.call(b.rows).map(function(r,j){return[key(r.cells[i],n),j,r]});
rows.sort(function(p,q){var a=p[0],c=q[0],d;
if(a===null||c===null)d=a===null?(c===null?0:1):-1;
else d=(n?cmp(a,c):(a<c?-1:a>c?1:0))*(up?1:-1);return d||p[1]-q[1]});
var f=document.createDocumentFragment();rows.forEach(function(p){f.appendChild(p[2])});
b.appendChild(f);for(var k=0;k<hs.length;k++)hs[k].removeAttribute("aria-sort");
h.setAttribute("aria-sort",up?"ascending":"descending")}
[].forEach.call(hs,function(h,i){if(!h.hasAttribute("data-t"))return;h.tabIndex=0;
h.addEventListener("click",function(){sortBy(i)});
h.addEventListener("keydown",function(e){if(e.key=="Enter"||e.key==" "){e.preventDefault();sortBy(i)}})});
})();
]]

-- The table's columns: title, data-t (n: numeric, s: text, nil: no sort).
local COLUMNS = {
  { "Segment", "s" }, { "Tags", "s" }, { "Teams", "s" }, { "Size", "n" },
  { "Change", "n" }, { "%", "n" }, { "Min", "n" }, { "Max", "n" },
  { "Trend" }, { "Created", "s" }, { "Updated", "s" },
}

local ORDER_TEXT = {
  change = "the largest change in percent (up or down) first",
  size = "the largest size at the end first", name = "name",
}

local function list_text(items)
  local out = {}
  for i, s in ipairs(items) do out[i] = escape(s) end
  return concat(out, ", ")
end

local function percent_cell(r)
  if r.state == "empty" then return '<td><span class="mark">no data</span>' end
  if r.state == "flat" then return '<td data-v="0"><span class="mark">flat</span>' end
  local text = html.percent_text(r.percent, r.first, r.last)
  if r.percent == nil then
    -- From nothing: sorts above every percentage.
    return format('<td data-v="%s">%s', r.change > 0 and ("9"):rep(24) or "0", text)
  end
  return format('<td data-v="%.6f">%s', r.percent, text)
end

--- One table row (without its end tags).
function M.row(r, anchor)
  local tr = format('<tr class="%s"%s>', r.state, anchor and format(' id="s-%s"', escape(r.id)) or "")
  local empty = r.state == "empty"
  return concat({
    tr, "<td>", escape(r.name), "<td>", list_text(r.tags), "<td>", list_text(r.teams),
    "<td>", empty and "" or number(r.last), "<td>", empty and "" or number(r.change, true),
    percent_cell(r),
    "<td>", empty and "" or number(r.min), "<td>", empty and "" or number(r.max),
    "<td>", svg.sparkline(r.values),
    "<td>", escape(r.created or ""), "<td>", escape(r.updated or ""), "\n",
  })
end

local function mover(r)
  local title = format("%s: %s to %s", r.name, number(r.first), number(r.last))
  return concat({
    format('<li class="%s"><a href="#s-%s"><bdi>%s</bdi></a><span class="p">%s</span>',
      r.state, escape(r.id), escape(r.name), html.percent_text(r.percent, r.first, r.last)),
    svg.sparkline(r.values, { height = 40, class = "big", title = title }),
    format('<span class="n">%s &#8594; %s (%s), %s &#8211; %s</span></li>',
      number(r.first), number(r.last), number(r.change, true), escape(r.start or ""),
      escape(r["end"] or "")),
  })
end

local function movers(title, list, none)
  local out = { "<div><h2>", title, "</h2>" }
  if #list == 0 then
    out[#out + 1] = "<p>" .. none .. "</p>"
  else
    out[#out + 1] = "<ol>"
    for _, r in ipairs(list) do out[#out + 1] = mover(r) end
    out[#out + 1] = "</ol>"
  end
  out[#out + 1] = "</div>"
  return concat(out)
end

local function fact(name, value)
  return format("<div><dt>%s</dt><dd>%s</dd></div>", name, value)
end

--- The page for `rep`: `rows` (sorted, from braze.cli.report.row),
-- `risers`, `fallers`, `sort`, `endpoint`, `days`, `made_at`, `first_day`,
-- `last_day`.
---@return string
function M.render(rep)
  local rows = rep.rows
  local off, empty, flat = 0, 0, 0
  for _, r in ipairs(rows) do
    if r.tracking == false then off = off + 1 end
    if r.state == "empty" then empty = empty + 1 end
    if r.state == "flat" then flat = flat + 1 end
  end
  local range = rep.first_day and format("%s to %s", escape(rep.first_day), escape(rep.last_day))
    or format("no data up to %s", escape(rep.last_day or "?"))
  local out = {
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
    '<meta name="viewport" content="width=device-width,initial-scale=1">\n',
    -- Nothing may be fetched: no script, style, font or image from anywhere.
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      .. "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n",
    '<meta name="referrer" content="no-referrer">\n',
    format("<title>Braze segments, %s</title>\n", range),
    "<style>\n", M.STYLE, "</style>\n</head>\n<body>\n<header>\n<h1>Braze segments</h1>\n",
    '<dl class="facts">',
    fact("Workspace", escape(rep.endpoint)),
    fact("Days (UTC)", format("%s (%d day%s)", range, rep.days, rep.days == 1 and "" or "s")),
    fact("Made", escape(rep.made_at)),
    fact("Segments", number(#rows)),
    fact("Analytics tracking off", number(off)),
    fact("No data", number(empty)),
    fact("Flat", number(flat)),
    "</dl>\n</header>\n<section class=\"movers\">\n",
    movers("Biggest risers", rep.risers, "No segment grew."), "\n",
    movers("Biggest fallers", rep.fallers, "No segment shrank."), "\n",
    "</section>\n<h2>All segments</h2>\n",
    format('<p>Sorted by %s.<span class="jsonly"> Click a column heading to sort by it.</span> '
      .. "Sizes are Braze's daily estimates; the change runs from the first day with a size "
      .. "to the last.</p>\n", ORDER_TEXT[rep.sort] or "change"),
    '<div class="scroll"><table id="segments">\n<thead><tr>',
  }
  for _, c in ipairs(COLUMNS) do
    out[#out + 1] = format("<th%s>%s</th>", c[2] and format(' data-t="%s"', c[2]) or "", c[1])
  end
  out[#out + 1] = "</tr></thead>\n<tbody>\n"
  local anchors = {}
  for _, r in ipairs(rep.risers) do anchors[r] = true end
  for _, r in ipairs(rep.fallers) do anchors[r] = true end
  for _, r in ipairs(rows) do out[#out + 1] = M.row(r, anchors[r]) end
  out[#out + 1] = "</tbody></table></div>\n<footer>Made by braze-segments report.</footer>\n"
  out[#out + 1] = "<script>\n" .. M.SCRIPT .. "</script>\n</body>\n</html>\n"
  return concat(out)
end

return M
