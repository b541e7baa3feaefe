"""deltalake is imported on first use: in an environment that lacks it the package imports,
Parquet exports work, and a Delta export is refused before writing, naming the package."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["deltalake"] = None  # as if deltalake were missing
    import coreviz_frames as cvf
    from coreviz_frames.local_api.synthetic import synthetic_media

    records = [synthetic_media(i) for i in range(3)]
    cvf.export_parquet(records, sys.argv[1] + "/plain", progress=False)
    print("plain", len(cvf.read_parquet(sys.argv[1] + "/plain").media))
    try:
        cvf.export_parquet(records, sys.argv[1] + "/delta", table_format="delta", progress=False)
    except cvf.ConfigError as exc:
        print("delta", exc)
    """
)


def test_without_deltalake_a_delta_export_names_the_package(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plain 3" in result.stdout
    assert 'pip install "deltalake"' in result.stdout
    assert 'table_format="delta"' in result.stdout
    assert not (tmp_path / "delta").exists()  # refused before anything is written
