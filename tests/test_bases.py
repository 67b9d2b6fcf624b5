"""Configs that build on configs: ``base: FILE`` (or a list of files) in an experiment
file, through the real command line. Mappings merge key by key, anything else is
replaced, the file's own keys win; every mistake names the file and line that wrote the
value, which may be a base file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import TINY_CONFIG, run_cli
from scratchnet import runs
from scratchnet.config.schema import MAX_BASE_DEPTH, MAX_BASE_FILES


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    """The 1-based line of ``path`` that holds ``text``."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def origins(shown: str) -> dict[str, tuple[str, str]]:
    """``show --origin``'s lines as key -> (value, who set it) (the last of a repeated key)."""
    return {line.split(":")[0].strip(" -"): (line.split(":", 1)[1].split("#")[0].strip(),
                                            line.split("#")[1].strip())
            for line in shown.splitlines() if "#" in line}


#: a base file (TINY_CONFIG, written as a person would) and its lines
BASE = yaml.safe_dump({"name": "tiny_base", **TINY_CONFIG}, sort_keys=False)


@pytest.fixture
def base(tmp_path) -> Path:
    return write(tmp_path, "shared/base.yaml", BASE)


def one_invalid_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("invalid: "), err
    assert "Traceback" not in err
    return lines[0][len("invalid: "):]


def test_an_inherited_mistake_is_located_in_the_base_file(tmp_path, base, cli):
    base.write_text(BASE.replace("lr: 0.1", "lr: -0.1"))
    derived = write(tmp_path, "derived.yaml", "base: shared/base.yaml\ntrain:\n  epochs: 3\n")
    rc, out, err = cli("validate", "derived.yaml")
    assert rc == 2 and out == ""
    assert one_invalid_line(err) == (f"{Path('shared/base.yaml')}:{line_of(base, 'lr:')}: "
                                     "optimizer.lr: lr must be a number > 0, got -0.1")
    # the file's own mistake is located in the file, and its own value wins over the base's
    derived.write_text("base: shared/base.yaml\ntrain:\n  epochs: 0\noptimizer:\n  lr: 0.1\n")
    rc, out, err = cli("validate", "derived.yaml")
    assert rc == 2
    assert one_invalid_line(err) == ("derived.yaml:3: train.epochs: epochs must be an integer "
                                     "in [1, 1000000], got 0")
    derived.write_text("base: shared/base.yaml\noptimizer:\n  lr: 0.1\n")
    rc, out, err = cli("validate", "derived.yaml")
    assert rc == 0 and out == "ok: derived.yaml (derived)\n", err


def test_bases_merge_mappings_replace_the_rest_and_the_run_keeps_the_whole_config(
        tmp_path, base, cli):
    write(tmp_path, "shared/wide.yaml", "model:\n  layers:\n    - {neurons: 32, activation: relu}"
          "\n    - {neurons: 10, activation: linear}\noptimizer:\n  lr: 0.05\n  momentum: 0.5\n"
          "train:\n  batch_size: 32\n")
    derived = write(tmp_path, "derived.yaml", "base: [shared/base.yaml, shared/wide.yaml]\n"
                    "optimizer:\n  momentum: 0.8\ntrain:\n  epochs: 1\n")
    rc, out, err = cli("train", derived, "--out", "runs", "-q", "--json")
    assert rc == 0, err
    run_dir = tmp_path / json.loads(out)["run_dir"]
    saved = yaml.safe_load((run_dir / runs.CONFIG).read_text())
    assert "base" not in saved  # a run never depends on a base file that may change
    assert saved["name"] == "derived"  # a name is not inherited: the file's stem
    assert saved["seed"] == TINY_CONFIG["seed"]  # from the first base
    # a list is replaced whole by the later base
    assert [(la["neurons"], la["activation"]) for la in saved["model"]["layers"]] == \
        [(32, "relu"), (10, "linear")]
    # mappings merge key by key: the later base over the earlier, the file over both
    assert saved["optimizer"]["name"] == "sgd_momentum"
    assert (saved["optimizer"]["lr"], saved["optimizer"]["momentum"]) == (0.05, 0.8)
    assert (saved["train"]["epochs"], saved["train"]["batch_size"]) == (1, 32)
    # the run folder stands alone: its config trains again with the bases gone
    (tmp_path / "shared" / "base.yaml").unlink()
    rc, out, err = cli("validate", run_dir / runs.CONFIG)
    assert rc == 0, err


def test_a_section_of_another_kind_replaces_the_bases(tmp_path, base, main_here):
    # the keys of one optimizer or decay mean something else, or nothing, in another: a
    # section that names another kind starts afresh (adam's beta1 is not carried over to
    # sgd_momentum, nor a linear decay's final_lr to a plateau, where it is the floor)
    write(tmp_path, "shared/adam.yaml", "base: base.yaml\noptimizer:\n  name: adam\n"
          "  lr: 0.01\n  beta1: 0.8\n  decay: {type: linear, final_lr: 0.001}\n")
    derived = write(tmp_path, "derived.yaml", "base: shared/adam.yaml\noptimizer:\n"
                    "  name: sgd_momentum\n  decay: {type: plateau}\n")
    rc, out, err = main_here("show", "derived.yaml", "--origin")
    assert rc == 0, err
    said = origins(out)
    assert "beta1" not in said
    assert said["lr"] == ("0.1", "default") and said["min_lr"] == ("0.0", "default")
    # the same kind merges key by key; a plateau's floor given as final_lr (its other
    # name) is said to come from where it was written
    derived.write_text("base: shared/adam.yaml\noptimizer:\n  decay: {type: plateau, "
                       "final_lr: 0.0001}\n")
    rc, out, err = main_here("show", "derived.yaml", "--origin")
    assert rc == 0, err
    said = origins(out)
    assert said["beta1"] == ("0.8", f"{Path('shared/adam.yaml')}:5")
    assert said["min_lr"] == ("0.0001", "derived.yaml:3")


def test_a_cycle_of_bases_is_one_line_naming_the_files(tmp_path, cli):
    write(tmp_path, "a.yaml", "base: b.yaml\n")
    write(tmp_path, "b.yaml", "seed: 1\nbase: [c.yaml]\n")
    write(tmp_path, "c.yaml", "base: a.yaml\n")
    rc, out, err = cli("validate", "a.yaml")
    assert rc == 2 and out == ""
    assert one_invalid_line(err) == ("c.yaml:1: base: a cycle of bases: a.yaml -> b.yaml -> "
                                     "c.yaml -> a.yaml; a file cannot build on itself")
    write(tmp_path, "self.yaml", "base: ./self.yaml\n")
    rc, _, err = cli("train", "self.yaml")
    assert rc == 2 and err.strip() == ("error: self.yaml:1: base: a cycle of bases: self.yaml "
                                       "-> self.yaml; a file cannot build on itself")


def test_a_missing_base_is_one_line_naming_the_including_file_and_line(tmp_path, base, cli):
    write(tmp_path, "derived.yaml", "seed: 3\nbase:\n  - shared/base.yaml\n  - shared/gone.yaml\n")
    rc, out, err = cli("validate", "derived.yaml")
    assert rc == 2 and out == ""
    assert one_invalid_line(err) == (
        f"derived.yaml:4: base.1: got 'shared/gone.yaml': no such file ({Path('shared/gone.yaml')}"
        "; a base is read relative to the file naming it)")
    # read relative to the file that names it, not to the working folder
    write(tmp_path, "shared/derived2.yaml", "base: base.yaml\n")
    rc, out, err = cli("validate", "shared/derived2.yaml")
    assert rc == 0, err


@pytest.mark.parametrize("value", ["3", "[]", "''", "[a.yaml, {x: 1}]", "{file: a.yaml}"])
def test_a_base_that_is_not_file_names_is_refused(tmp_path, main_here, value):
    write(tmp_path, "bad.yaml", f"seed: 1\nbase: {value}\n")
    rc, out, err = main_here("validate", "bad.yaml")
    assert rc == 2
    line = one_invalid_line(err)
    assert line.startswith("bad.yaml:2: base: got ") and line.endswith(
        f"expected a file name or a list of 1 to {MAX_BASE_FILES} file names")


def test_chains_work_and_are_bounded(tmp_path, base, main_here):
    # a chain of MAX_BASE_DEPTH files trains; one more is refused where it goes too deep
    write(tmp_path, "shared/c1.yaml", "base: base.yaml\ntrain: {epochs: 1}\n")
    for n in range(2, MAX_BASE_DEPTH + 1):
        write(tmp_path, f"shared/c{n}.yaml", f"base: c{n - 1}.yaml\nseed: {n}\n")
    deepest = f"shared/c{MAX_BASE_DEPTH - 1}.yaml"  # with base.yaml: MAX_BASE_DEPTH files
    rc, out, err = main_here("validate", deepest)
    assert rc == 0, err
    rc, out, err = main_here("validate", f"shared/c{MAX_BASE_DEPTH}.yaml")
    assert rc == 2
    assert one_invalid_line(err) == (f"{Path('shared/c1.yaml')}:1: base: a chain of more than "
                                     f"{MAX_BASE_DEPTH} files (a base of a base of ...); "
                                     f"expected at most {MAX_BASE_DEPTH}")
    # lists of bases multiply what a chain reads: the files read in all are bounded too
    write(tmp_path, "d0.yaml", "seed: 1\n")
    for n in range(1, 6):
        write(tmp_path, f"d{n}.yaml", f"base: [d{n - 1}.yaml, d{n - 1}.yaml]\n")
    rc, out, err = main_here("validate", "d5.yaml")  # 63 files to read
    assert rc == 2
    assert f"reads more than {MAX_BASE_FILES} files through its bases" in one_invalid_line(err)


def test_set_over_inherited_keys_and_show_origin(tmp_path, base, cli):
    write(tmp_path, "derived.yaml", "base: shared/base.yaml\ntrain:\n  epochs: 3\n")
    rc, out, err = cli("validate", "derived.yaml", "--set", "train.batch_size=0")
    assert rc == 2
    assert one_invalid_line(err) == ("derived.yaml (--set train.batch_size=0): train.batch_size: "
                                     "batch_size must be an integer in [1, 2147483647], got 0")
    rc, out, err = cli("show", "derived.yaml", "--origin", "--set", "train.batch_size=16")
    assert rc == 0, err
    said = {key: who for key, (_, who) in origins(out).items()}
    shared = Path("shared/base.yaml")
    assert said["seed"] == f"{shared}:{line_of(base, 'seed:')}"
    assert said["epochs"] == "derived.yaml:3"
    assert said["batch_size"] == "--set train.batch_size=16"
    assert said["health"] == "default"
    assert said["momentum"] == f"{shared}:{line_of(base, 'momentum:')}"
    assert "base" not in said and "base:" not in out
    # the commented listing is the config show prints without --origin
    rc, plain, err = cli("show", "derived.yaml", "--set", "train.batch_size=16")
    assert yaml.safe_load(out.split("model: derived")[0]) == \
        yaml.safe_load(plain.split("model: derived")[0])


def test_a_sweep_over_a_derived_config(tmp_path, base):
    write(tmp_path, "derived.yaml", "base: shared/base.yaml\ntrain: {epochs: 1}\n"
          "sweep:\n  grid:\n    optimizer.lr: [0.05, 0.1]\n")
    rc, out, err = run_cli(["sweep", "derived.yaml", "--out", "sweeps", "-q", "--json", "-j", "1"],
                           tmp_path)
    assert rc == 0, err
    table = json.loads(out)
    assert [p["status"] for p in table["points"]] == ["ok", "ok"]
    state = json.loads(next((tmp_path / "sweeps").glob("*/sweep.json")).read_text())
    assert "base" not in state["base_config"]
    assert state["base_config"]["seed"] == TINY_CONFIG["seed"]  # inherited


def test_a_bad_tune_space_in_a_base_names_the_base_file_and_line(tmp_path, base):
    pytest.importorskip("optuna")
    shared = write(tmp_path, "shared/space.yaml",
                   "tune:\n  space:\n    optimizer.lr: loguniform:0:1\n")
    write(tmp_path, "derived.yaml", "base: [shared/base.yaml, shared/space.yaml]\n")
    rc, out, err = run_cli(["tune", "derived.yaml"], tmp_path)
    assert rc == 2 and out == ""
    assert err.strip() == (f"error: {Path('shared/space.yaml')}:{line_of(shared, 'optimizer.lr')}"
                           ": tune.space.optimizer.lr: a log range must be above 0, got low 0; "
                           "expected loguniform:LOW:HIGH with 0 < LOW <= HIGH")


def test_the_json_schema_takes_a_file_name_or_a_list_of_them(cli):
    rc, out, err = cli("schema")
    assert rc == 0
    prop = json.loads(out)["properties"]["base"]
    kinds = {c.get("type") for c in prop["anyOf"]}
    assert kinds == {"string", "array", "null"}
    array = next(c for c in prop["anyOf"] if c.get("type") == "array")
    assert array["items"]["type"] == "string" and array["maxItems"] == MAX_BASE_FILES


def test_an_experiment_and_its_bases_read_a_bounded_amount_of_yaml(tmp_path, main_here,
                                                                   monkeypatch):
    from scratchnet import files

    monkeypatch.setattr(files, "MAX_CONFIG_BYTES", 1000)  # each file fits, not both
    write(tmp_path, "first.yaml", "#" * 590 + "\nseed: 1\n")
    write(tmp_path, "second.yaml", "#" * 590 + "\nbase: first.yaml\n")
    rc, out, err = main_here("validate", "second.yaml")
    assert rc == 2
    assert one_invalid_line(err) == (
        "first.yaml: holds 599 bytes, more than the 392 bytes that scratchnet reads for a base "
        "of an experiment file (an experiment and its bases: 1000 bytes in all)")


def test_base_is_written_in_the_file_not_given_by_set(tmp_path, base, main_here):
    write(tmp_path, "derived.yaml", "base: shared/base.yaml\n")
    rc, out, err = main_here("validate", "derived.yaml", "--set", "base=other.yaml")
    assert rc == 2
    assert one_invalid_line(err) == (
        "derived.yaml (--set base=other.yaml): base: bases are read with the file that names "
        "them (load_config), so base is written in the file, not given by --set or to "
        "validate()")
