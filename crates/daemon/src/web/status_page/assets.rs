//! The page's only style sheet and script, and the `Content-Security-Policy`
//! that allows exactly those two by hash and nothing else.

use std::sync::OnceLock;

/// The page's only style sheet, allowed by its hash.
pub(super) const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h2{margin:1.2em 0 .4em;font-size:1.2em}
table{border-collapse:collapse}#tenants td{white-space:nowrap}td,th{padding:.25em .7em;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}
.bad{color:#b00020;font-weight:600}.warn{color:#a15c00}.ok{color:#1b7f3b}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin-bottom:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:12em}
.card b{display:block;font-size:1.3em}code{font-size:.85em}
.board{list-style:none;padding:0;margin:0;max-width:75em}
.board li{border-left:.35em solid #999;padding:.3em .7em;margin:.25em 0;background:#fafafa}
.board li.critical{border-color:#b00020}.board li.warning{border-color:#d98e04}.board li.notice{border-color:#6b7c93}
.sev{display:inline-block;min-width:5.5em;font-size:.8em;text-transform:uppercase;font-weight:700}
.critical .sev{color:#b00020}.warning .sev{color:#a15c00}.notice .sev{color:#6b7c93}
.advice{display:block;color:#555;font-size:.9em}
.controls{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.5em 0}
#filter{min-width:22em;padding:.3em}
svg text{font-size:11px;fill:#444}svg .axis{stroke:#999}svg .tick{stroke:#e3e3e3}
svg .mark{fill:#1b7f3b}svg .mark.warning{fill:#d98e04}svg .mark.critical{fill:#b00020}
svg .next{font-weight:700;fill:#222}
";

/// The page's only script, allowed by its hash: filter, sort and
/// auto-refresh, in plain JavaScript.
pub(super) const SCRIPT: &str = r#"
(function () {
  "use strict";
  var table = document.getElementById("tenants");
  if (!table) return;
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var filter = document.getElementById("filter");
  var state = document.getElementById("state");
  var shown = document.getElementById("shown");
  var auto = document.getElementById("autorefresh");
  function store(k, v) { try { window.sessionStorage.setItem(k, v); } catch (e) {} }
  function stored(k) { try { return window.sessionStorage.getItem(k); } catch (e) { return null; } }
  function apply() {
    var q = filter.value.trim().toLowerCase(), s = state.value, n = 0;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i].dataset;
      var ok = (!q || d.name.indexOf(q) >= 0 || d.domain.indexOf(q) >= 0 || d.tenant.indexOf(q) >= 0) &&
        (!s || (s === "attention" ? d.attention !== "0" : d.state === s));
      if (rows[i].hidden === ok) rows[i].hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = n + " of " + rows.length + " tenants";
    store("tenantwatch.filter", filter.value);
    store("tenantwatch.state", s);
  }
  function key(row, col) {
    var td = row.cells[col];
    if (!td) return "";
    var v = td.getAttribute("data-v");
    if (v === null) return td.textContent.toLowerCase();
    return v === "" ? Infinity : Number(v);
  }
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var keyed = rows.map(function (r, i) { return [key(r, col), i, r]; });
      keyed.sort(function (a, b) {
        var c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
        // Equal keys keep their order (a stable sort either way).
        return (asc ? c : -c) || a[1] - b[1];
      });
      var frag = document.createDocumentFragment();
      rows = keyed.map(function (k) { frag.appendChild(k[2]); return k[2]; });
      tbody.appendChild(frag);
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  var timer = null;
  function arm() {
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    if (auto.checked) timer = window.setTimeout(function () { window.location.reload(); }, Number(auto.value) * 1000);
    try { window.localStorage.setItem("tenantwatch.autorefresh", auto.checked ? "1" : "0"); } catch (e) {}
  }
  try { auto.checked = window.localStorage.getItem("tenantwatch.autorefresh") === "1"; } catch (e) {}
  var f = stored("tenantwatch.filter"), s = stored("tenantwatch.state");
  if (f !== null) filter.value = f;
  if (s !== null) state.value = s;
  filter.addEventListener("input", apply);
  state.addEventListener("change", apply);
  auto.addEventListener("change", arm);
  apply();
  arm();
})();
"#;

/// The `Content-Security-Policy` the page is served with: nothing may be
/// loaded or sent anywhere, and only the page's own inline style and
/// script run, each named by its SHA-256 (no `'unsafe-inline'`).
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            csp_hash(SCRIPT),
            csp_hash(STYLE)
        )
    })
}

/// A CSP source expression for an inline element's exact text (CSP Level 3, "hash-source").
pub(super) fn csp_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}
