"""The XSS corpus of the web page tests: in the browser (test_browser.py) and in-process
(test_render.py)."""

# Each payload must show as literal text wherever the registry shows user text.
XSS = [
    "<script>alert('xss1')</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert('xss3')>",
    "<img src=\"x\" onerror=\"alert(4)\"/>",
    "<svg onload=alert(5)>",
    "<svg><script>alert(6)</script></svg>",
    "<body onload=alert(7)>",
    "<iframe src=\"javascript:alert(8)\"></iframe>",
    "<a href=\"javascript:alert(9)\">click me</a>",
    "javascript:alert(10)",
    "\"><script>alert(11)</script>",
    "'><img src=x onerror=alert(12)>",
    "\" onmouseover=\"alert(13)\" x=\"",
    "' onfocus='alert(14)' autofocus='",
    "<details open ontoggle=alert(15)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(16)>",
    "<input autofocus onfocus=alert(17)>",
    "<object data=\"javascript:alert(18)\"></object>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(19)\">",
    "{{ 7*7 }}<!-- {% raw %} --><style>body{display:none}</style>",
    "<div style=\"background:url(javascript:alert(21))\">x</div>",
    "</pre></td></tr></table><script>alert(22)</script>",
    "&lt;script&gt;alert(23)&lt;/script&gt;",
    "<scr<script>ipt>alert(24)</scr</script>ipt>",
]
