"""Page assets for the static book: fixes for the offline widget manager and for Sphinx 7.4.

Registered in book/_config.yml under ``sphinx: local_extensions``. It copies book/vendor/ (the
offline MathJax, require.js and widget manager that book/vendor.sh fetches) into the built
``_static/``. It is added here rather than in ``html_static_path``: once book/_static/ exists,
jupyter-book 1.x links every .js and .css file found under every static path into every page,
which would put hundreds of MathJax component files on each page. It also does two things on every
HTML page (``html-page-context``, run after myst-nb and sphinx.ext.mathjax have added theirs):

1. Drops repeated inline scripts. Sphinx 7.4 stores an inline script added after the builder
   starts once with ``filename=None`` and once more with ``filename=''``, so extensions that add
   one late (sphinx-thebe's ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) get it
   twice, and the second ``const`` throws "Identifier 'THEBE_JS_URL' has already been declared".
2. On pages that load the widget manager (require.js + @jupyter-widgets/html-manager 1.0.x),
   tells require.js, before it loads, where the manager's own files are. The manager's modules
   load Font Awesome's fonts from the folder of their AMD module ids
   (``@jupyter-widgets/html-manager/dist/libembed-amd``, ``@jupyter-widgets/controls``, ...);
   without this require.js resolves those ids against the page's folder, and the three font
   requests 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

#: Where book/vendor.sh puts @jupyter-widgets/html-manager's dist/ files inside the built book.
HTML_MANAGER_DIR = "_static/html-manager"
#: Runs before require.js, which myst-nb adds at Sphinx's default priority (500).
REQUIRE_CONFIG_PRIORITY = 450
#: The AMD modules that embed-amd.js defines by name. Webpack in each resolves its assets (the
#: Font Awesome fonts) against the folder of the module's require.js URL, so every one must
#: resolve into HTML_MANAGER_DIR, where vendor.sh put those files.
WIDGET_MODULES = {
    "@jupyter-widgets/html-manager/dist": "",
    "@jupyter-widgets/html-manager": "/html-manager",
    "@jupyter-widgets/controls": "/controls",
    "@jupyter-widgets/base": "/base",
}
REQUIRE_CONFIG = (
    "(function () {var dir = new URL("
    f"'{HTML_MANAGER_DIR}', new URL(document.documentElement.dataset.content_root || './', "
    "document.baseURI)).href; var paths = {};"
    + "".join(f" paths['{module}'] = dir + '{suffix}';" for module, suffix in WIDGET_MODULES.items())
    + " window.require = {paths: paths};})();"
)


def _script_key(script: Any) -> tuple[str, str]:
    """Identity of a page script: its file, or for an inline script its body."""
    filename = str(getattr(script, "filename", script) or "")
    body = getattr(script, "attributes", {}).get("body", "") if not filename else ""
    return filename, body


def _unique_scripts(scripts: list[Any]) -> list[Any]:
    """``scripts`` without repeats, keeping the first (lowest-priority) copy of each."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in sorted(scripts, key=lambda s: getattr(s, "priority", 500)):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    return unique


def _loads_require_js(scripts: list[Any]) -> bool:
    return any(_script_key(s)[0].split("?")[0].endswith("require.js") for s in scripts)


def _fix_page_scripts(app: Sphinx, pagename: str, templatename: str,
                      context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    if _loads_require_js(scripts):
        app.builder.add_js_file("", body=REQUIRE_CONFIG, priority=REQUIRE_CONFIG_PRIORITY)
    scripts[:] = _unique_scripts(scripts)


def _add_vendor_static_path(app: Sphinx) -> None:
    vendor = Path(app.confdir) / "vendor"
    if not (vendor / "require.js").is_file():
        raise FileNotFoundError(f"{vendor} is missing or incomplete: run `bash book/vendor.sh`")
    app.config.html_static_path.append(str(vendor))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _add_vendor_static_path)
    app.connect("html-page-context", _fix_page_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
