"""The render package's start-up trims: a stand-in for requests premailer never uses, and cssutils
without validation, neither of which may change a byte of the inlined HTML."""

from __future__ import annotations

import subprocess
import sys

from digest.render.renderer import _OnDemand


def test_the_stand_in_imports_the_real_module_on_first_use() -> None:
    name = "colorsys"  # a module this test process has no other use for
    real_before = sys.modules.pop(name, None)
    try:
        stand_in = _OnDemand(name)
        sys.modules[name] = stand_in
        assert stand_in.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
        assert sys.modules[name] is not stand_in
        assert sys.modules[name].hls_to_rgb(0.0, 0.5, 1.0) == (1.0, 0.0, 0.0)
    finally:
        if real_before is not None:
            sys.modules[name] = real_before


# The same document inlined in a fresh interpreter with and without the trims.
INLINE = """
import logging, sys
from digest.render.renderer import _premailer
html = sys.stdin.read()
if sys.argv[1] == "trimmed":
    Premailer, _ = _premailer()
else:
    from premailer import Premailer
print(Premailer(html, base_url=None, allow_network=False, keep_style_tags=False,
                remove_classes=False, disable_validation=True,
                cssutils_logging_level=logging.CRITICAL).transform(pretty_print=False))
"""

DOCUMENT = """<html><head><style>
p { color: #333; margin: 0 0 12px; font: 16px/1.5 Georgia, serif }
.btn { background: linear-gradient(#fff, #eee); border-radius: 4px; colour: red; width: 12qq }
img.right { float: right }
@media (max-width: 600px) { .btn { display: block !important } }
</style></head><body>
<p class="btn" style="padding: 4px 8px; mso-line-height-rule: exactly;
 -webkit-text-size-adjust: none">Hi</p><img class="right" style="border:0; max-width:100%" src="https://example.com/a.png">
<p style="color: nonsense; margin: 1px 2px 3px">text</p></body></html>"""


def test_the_trims_change_nothing_premailer_writes() -> None:
    outputs = {}
    for mode in ("plain", "trimmed"):
        result = subprocess.run(
            [sys.executable, "-c", INLINE, mode],
            input=DOCUMENT,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs[mode] = result.stdout
    assert 'text-size-adjust:none" width="12qq">Hi' in outputs["plain"]  # it inlined
    assert outputs["trimmed"] == outputs["plain"]
