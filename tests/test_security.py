"""Security: hostile dataset strings stay text, nothing is pickled, nothing goes on the network,
and no output ever replaces the input.

The report's escaping of prompts, responses, labels and check names is tested in
tests/report/test_html.py; this module adds hostile field names and file names, the terminal,
a source scan for unsafe deserialisation, and offline audits with sockets blocked.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from dataaudit.cli import main
from dataaudit.embed import HashingEmbedder
from dataaudit.errors import InputError, UsageError
from dataaudit.io.load import load
from dataaudit.result import AuditResult
from tests.conftest import REPO
from tests.report.test_html import parse

PACKAGE = REPO / "dataaudit"
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
#: Rich markup and a terminal escape sequence (clear screen, set the window title).
TERMINAL = "[/bold][link=https://evil.example]click[/link] \x1b[2J\x1b]0;pwned\x07"
#: Tags the report itself uses (see tests/report/test_html.py).
#: A console wide enough that rich does not wrap the strings the tests look for.
WIDE = {"COLUMNS": "2000"}
REPORT_TAGS = {"html", "head", "meta", "link", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "main",
               "nav", "a", "section", "p", "div", "table", "thead", "tbody", "tr", "th", "td", "span", "b", "ul", "li",
               "details", "summary", "label", "input", "button", "canvas", "noscript", "code", "script"}
#: What checks' report sections add: marked evidence spans and inline SVG charts (static, no script).
REPORT_TAGS |= {"mark", "svg", "rect", "line", "text"}


# -- no unsafe deserialisation in the package ------------------------------------------------------
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
#: What the package may take from joblib: its process pool (``joblib.load`` stays forbidden).
PROCESS_POOL_NAMES = {"Parallel", "delayed"}


def unsafe_deserialisation(root: Path) -> list[str]:
    """Every place under ``root`` that could unpickle or run code from a file."""
    offences = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{node.lineno}" if hasattr(node, "lineno") else path.name
            if isinstance(node, ast.Import):
                offences += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                # joblib's worker processes only exchange pickles with their own parent, never read files
                if node.module != "joblib" or {a.name for a in node.names} - PROCESS_POOL_NAMES:
                    offences.append(f"{where} from {node.module} import")
            elif isinstance(node, ast.Call):
                name = _dotted(node.func)
                leaf = name.rsplit(".", 1)[-1]
                if leaf in ("read_pickle", "to_pickle"):
                    offences.append(f"{where} {name}")
                elif name in ("np.load", "numpy.load", "np.save", "numpy.save") and _keyword(node, "allow_pickle") is not False:
                    offences.append(f"{where} {name} without allow_pickle=False")
                elif name == "torch.load" and _keyword(node, "weights_only") is not True:
                    offences.append(f"{where} torch.load without weights_only=True")
                elif _keyword(node, "trust_remote_code") is True:
                    offences.append(f"{where} {name} with trust_remote_code=True")
                elif leaf == "save_pretrained" and _keyword(node, "safe_serialization") is False:
                    offences.append(f"{where} save_pretrained without safetensors")
    return offences


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return "<missing>"


def test_no_pickle_and_no_unsafe_torch_load_in_the_package():
    assert unsafe_deserialisation(PACKAGE) == []


def test_the_scan_catches_what_it_looks_for(tmp_path):
    (tmp_path / "evil.py").write_text(textwrap.dedent("""
        import pickle
        import numpy as np
        import torch
        np.load("x.npy")
        torch.load("w.pt")
        torch.load("w.pt", weights_only=False)
        np.load("ok.npy", allow_pickle=False)
        torch.load("ok.pt", weights_only=True)
        AutoModel.from_pretrained("x", trust_remote_code=True)
    """))
    found = " ".join(unsafe_deserialisation(tmp_path))
    for line in (2, 5, 6, 7, 10):
        assert f"evil.py:{line} " in found
    assert "evil.py:8 " not in found and "evil.py:9 " not in found


def assert_inert_html(html: str):
    parsed = parse(html)
    tags = [tag for tag, _ in parsed.tags]
    assert set(tags) <= REPORT_TAGS and tags.count("script") == 2 and "img" not in tags
    assert not [name for _, attrs in parsed.tags for name, _ in attrs if name.startswith("on")]
    assert "<script>alert" not in html and "<img" not in html
    return parsed


def hostile_dataset(path: Path) -> Path:
    """Records whose field names, prompts, responses and labels are all XSS and markup payloads."""
    rows = [{XSS: f"{XSS} prompt {i} {TERMINAL}", f"{XSS}answer": f"{XSS} answer {i % 3}",
             f"{XSS}label": [XSS, TERMINAL, "plain"][i % 3]} for i in range(24)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# -- XSS and markup in field names and file names ---------------------------------------------------
def test_hostile_field_names_file_names_and_labels_stay_text(hashing_cli, tmp_path):
    folder = tmp_path / XSS.replace("/", "")
    folder.mkdir()
    data = hostile_dataset(folder / f"{XSS.replace('/', '')}{TERMINAL.replace('/', '')}.jsonl")
    out = tmp_path / "out"
    result = hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), "--no-cache",
                                       "--prompt-field", XSS, "--response-field", f"{XSS}answer", "--label-field", f"{XSS}label"],
                                env=WIDE)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "Traceback" not in result.output
    assert "[link=https:evil.example]click[link] \\x1b[2J" in result.output  # the file name, markup shown as text
    html = (out / "report.html").read_text(encoding="utf-8")
    parsed = assert_inert_html(html)
    assert XSS.replace("/", "") in "".join(parsed.text)  # the file name is shown, as text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["path"] == str(data)  # data is kept exactly; only its rendering is escaped


def test_inspect_shows_hostile_labels_and_keys_as_text(tmp_path):
    data = hostile_dataset(tmp_path / "d.jsonl")
    result = CliRunner().invoke(main, ["inspect", str(data), "--prompt-field", XSS, "--label-field", f"{XSS}label"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\\x1b[2J" in result.output
    assert "[/bold]" in result.output and "[link=https://evil.example]click[/link]" in result.output
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({TERMINAL: 1, XSS: 2}) + "\n")
    error = CliRunner().invoke(main, ["inspect", str(unknown)])
    assert error.exit_code == 2 and "\x1b" not in error.output and "\x07" not in error.output


# -- nothing the tool writes or reads is a pickle ---------------------------------------------------
PICKLE_HEADERS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def test_everything_written_is_plain_data(hashing_cli, tmp_path):
    data = hostile_dataset(tmp_path / "d.jsonl")
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    fields = ["--prompt-field", XSS, "--response-field", f"{XSS}answer", "--label-field", f"{XSS}label"]
    assert hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), *fields]).exit_code == 0
    from dataaudit.embed import CachingEmbedder, EmbeddingCache

    CachingEmbedder(embedder=HashingEmbedder(), cache=EmbeddingCache(directory=cache)).embed(["a", "b"])
    exported = hashing_cli.invoke(main, ["export", str(data), "--audit", str(out), "--out", str(tmp_path / "c.jsonl"),
                                         "--rejected", str(tmp_path / "r.jsonl"), "--annotate", *fields])
    assert exported.exit_code == 0, exported.output
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path != data]
    assert {path.suffix for path in written} <= {".parquet", ".jsonl", ".json", ".html", ".npy"}
    for path in written:
        assert path.read_bytes()[:2] not in PICKLE_HEADERS, path
        if path.suffix == ".npy":
            assert not np.load(path, allow_pickle=False).dtype.hasobject


def test_a_pickle_planted_in_an_audit_directory_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    audit_dir = tmp_path / "audit"
    audit_dir.mkdir()
    (audit_dir / "summary.json").write_text("{}")
    (audit_dir / "rows.parquet").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InputError, match="cannot read audit file"):
        AuditResult.load(audit_dir)
    (audit_dir / "rows.parquet").unlink()
    (audit_dir / "findings.jsonl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InputError):
        AuditResult.load(audit_dir)
    assert not marker.exists()


@pytest.mark.parametrize("broken", ["summary.json", "findings.jsonl", "rows.parquet"])
def test_a_damaged_audit_directory_is_a_clear_error(tmp_path, broken):
    from dataaudit.runner import audit
    from tests.conftest import FixedClusterPipeline

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "completion": "same"}) + "\n" for p in ["a", "a", "b", "c"]))
    audit(load(data), embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(), checks=["duplicate"]).save(tmp_path / "audit")
    path = tmp_path / "audit" / broken
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(InputError, match=broken):
        AuditResult.load(tmp_path / "audit")
    result = CliRunner().invoke(main, ["export", str(data), "--audit", str(tmp_path / "audit"),
                                       "--out", str(tmp_path / "c.jsonl"), "--rejected", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2 and broken in result.output and "Traceback" not in result.output


# -- no network --------------------------------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    """Every way to open a connection raises, and is recorded."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_full_audit_runs_with_sockets_blocked(hashing_cli, no_network, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"how do I reset password {i % 5}", "completion": "Click reset."}) + "\n" for i in range(30)))
    production = tmp_path / "p.jsonl"
    production.write_text("".join(json.dumps({"text": f"where is my parcel {i}"}) + "\n" for i in range(10)))
    out = tmp_path / "out"
    result = hashing_cli.invoke(main, ["audit", str(data), "--production", str(production), "--out", str(out),
                                       "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").exists() and no_network == []


@pytest.mark.slow
def test_real_model_audit_is_offline(tmp_path):
    """The default MiniLM audit, in a fresh process with no offline flags set and every socket
    call refused: it must not even try the network."""
    data = tmp_path / "d.jsonl"
    # Three dozen rows but only eight distinct prompts: clustering skips UMAP (no numba
    # compilation in the fresh process), while the model still loads and embeds every text.
    topics = ["reset my password", "track my parcel", "cancel my order", "change my address"]
    data.write_text("".join(json.dumps({"prompt": f"Please help me {topics[i % 4]} ({i % 2})", "completion": "Sure."}) + "\n"
                            for i in range(36)))
    attempts = tmp_path / "attempts.txt"
    script = textwrap.dedent(f"""
        import socket, sys
        def refuse(*args, **kwargs):
            with open({str(attempts)!r}, "a") as log:
                log.write(repr(args[:2]) + "\\n")
            raise OSError("network access is blocked")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        from dataaudit.cli import main
        sys.exit(main(["audit", {str(data)!r}, "--out", {str(tmp_path / "out")!r}, "--cache-dir", {str(tmp_path / "cache")!r}, "-q"]))
    """)
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # no token, no cached hub metadata to lean on
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not attempts.exists(), attempts.read_text()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["embedder"].startswith("all-MiniLM-L6-v2") and summary["dataset"]["records"] == 36


# -- never overwrite the input ----------------------------------------------------------------------
@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    return path


@pytest.mark.parametrize("target", ["clean", "rejected", "hardlink", "symlink"])
def test_export_refuses_to_overwrite_the_input(tmp_path, source, target):
    clean, rejected = tmp_path / "c.jsonl", tmp_path / "r.jsonl"
    if target == "clean":
        clean = source
    elif target == "rejected":
        rejected = source
    elif target == "hardlink":
        os.link(source, clean)
    else:
        clean.symlink_to(source)
    before = source.read_bytes()
    result = CliRunner().invoke(main, ["export", str(source), "--out", str(clean), "--rejected", str(rejected)])
    assert result.exit_code == 2 and "refusing to overwrite the input" in result.output
    assert source.read_bytes() == before


def test_export_refuses_two_outputs_in_one_file(tmp_path, source):
    """Both would be renamed over the same path: the kept records would vanish."""
    result = CliRunner().invoke(main, ["export", str(source), "--out", str(tmp_path / "o.jsonl"), "--rejected", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "one file" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_relabel_changes_log_cannot_replace_the_input(tmp_path, source):
    from dataaudit.checks.base import FINDING_SCHEMA
    from dataaudit.export import export_clean

    dataset = load(source)
    result = AuditResult(rows=pl.DataFrame(), findings=pl.DataFrame(schema=FINDING_SCHEMA), clusters=pl.DataFrame(),
                         summary={"dataset": {"fingerprint": dataset.fingerprint()}})
    with pytest.raises(UsageError, match="refusing to overwrite the input"):
        export_clean(dataset, result, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl", relabel=True, changes=source)


@pytest.mark.parametrize("name", ["findings.jsonl", "summary.json", "report.html"])
def test_audit_refuses_an_out_directory_that_would_replace_the_input(hashing_cli, tmp_path, name):
    data = tmp_path / name
    data.write_text('{"prompt": "a", "completion": "b"}\n' * 3)
    before = data.read_bytes()
    result = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path), "--no-cache"])
    assert result.exit_code == 2 and "refusing to overwrite the input" in result.output
    assert data.read_bytes() == before


def test_audit_refuses_an_out_path_that_is_a_file(hashing_cli, tmp_path, source):
    result = hashing_cli.invoke(main, ["audit", str(source), "--out", str(source), "--no-cache"])
    assert result.exit_code == 2 and "is an existing file" in result.output
    assert "Traceback" not in result.output
