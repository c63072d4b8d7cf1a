"""Files the API and the pages hand out: an .xlsx written into the answer, named with the time."""

import io
from collections.abc import Callable
from typing import IO

from flask import Response

from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE


def xlsx_download(write: Callable[[IO[bytes]], object], name: str) -> Response:
    """An .xlsx written by ``write(out)`` as a download named ``<name>-<YYYYmmdd-HHMM>.xlsx``."""
    out = io.BytesIO()
    write(out)
    stamp = clock.now().strftime("%Y%m%d-%H%M")
    return Response(
        out.getvalue(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.xlsx"'},
    )
