/**
 * The portal's one stylesheet, served from the service (`/portal/assets/portal.css`): the CSP
 * allows styles from 'self' only, so nothing is inline and nothing comes from elsewhere.
 * No script: every page works with plain forms and links.
 */
export const PORTAL_CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c1e21;background:#f5f6f8}
a{color:#0b57d0}
a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #f4b400;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:10}
header{background:#1f2937;color:#fff;padding:10px 16px;display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center}
header .brand{font-weight:700;margin-right:8px}
header nav{display:flex;flex-wrap:wrap;gap:4px 14px}
header a{color:#fff;text-decoration:none;padding:4px 2px}
header a[aria-current=page]{border-bottom:2px solid #f4b400}
header form{margin-left:auto}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.4rem;margin:8px 0 16px}
h2{font-size:1.1rem;margin:20px 0 8px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px;margin-bottom:16px;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{font-size:.85rem;color:#555}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
pre{background:#f0f2f5;padding:10px;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
label{display:block;font-weight:600;margin:8px 0 4px}
input[type=text],input[type=url],input[type=datetime-local],select,textarea{width:100%;max-width:520px;padding:7px;border:1px solid #b8bfc8;border-radius:6px;font:inherit}
button{font:inherit;padding:7px 14px;border-radius:6px;border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer;min-height:36px}
button.secondary{background:#fff;color:#0b57d0}
button.danger{background:#b3261e;border-color:#b3261e}
.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.actions form{margin:0}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
.filters label{margin:0 0 4px}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;font-weight:600;background:#e8eaed}
.status-succeeded,.status-enabled{background:#d7f5dd;color:#0d652d}
.status-failed,.status-pending{background:#fff4ce;color:#7a5b00}
.status-dead,.status-disabled{background:#fce8e6;color:#a50e0e}
.status-paused{background:#e8eaed;color:#444}
.notice{background:#e8f0fe;border:1px solid #aecbfa;padding:10px;border-radius:6px;margin-bottom:14px}
.error{background:#fce8e6;border:1px solid #f6aea9;padding:10px;border-radius:6px;margin-bottom:14px}
.secret{word-break:break-all}
.muted{color:#666}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;min-width:150px}
.kpi b{display:block;font-size:1.3rem}
svg.chart{width:100%;height:auto;display:block}
.legend span{margin-right:14px}
.swatch-ok{color:#188038}.swatch-fail{color:#d93025}.swatch-p95{color:#0b57d0}
@media (max-width:600px){
  main{padding:10px}
  table.stack thead{display:none}
  table.stack tr{display:block;border-bottom:1px solid #dde1e6;padding:6px 0}
  table.stack td{display:block;border:0;padding:2px 4px}
  table.stack td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:#555}
  header form{margin-left:0}
}
`;
