"""The recipes travel with the package: every recipes/*.yaml is bundled as `nmt.recipes`
with a description and the README's result, `resolve_recipe` finds one by file or name and
explains a typo or a model directory, `nmt recipes` lists and shows them, and a wheel
built from this checkout carries them to an install outside it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import typer
from helpers.checkout import RECIPES, ROOT
from typer.testing import CliRunner

from nmt.cli import recipes as recipes_cli
from nmt.errors import UserError
from nmt.recipe.bundled import bundled, header, recipe_text, resolve_recipe
from nmt.recipe.load import load_recipe

README = (ROOT / "README.md").read_text(encoding="utf-8")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
DECIMAL = re.compile(r"\d+\.\d+")


def recipe_files() -> list[Path]:
    return sorted(RECIPES.glob("*.yaml"))


def readme_row(name: str) -> str:
    """The row of README's recipe table for `name`.yaml."""
    rows = [line for line in README.splitlines() if line.startswith(f"| `{name}.yaml` |")]
    assert len(rows) == 1, f"README's recipe table has {len(rows)} rows for {name}.yaml"
    return rows[0]


def cli(*args: str) -> tuple[int, str, str]:
    """Run `nmt recipes ...` on an app of our own: exit code, stdout, stderr."""
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """nmt"""

    app.add_typer(recipes_cli.app, name="recipes")
    result = CliRunner().invoke(app, ["recipes", *args])
    return result.exit_code, result.stdout, result.stderr


def refusal(arg: str) -> str:
    # one line, as every UserError is; each caller checks the words it expects
    with pytest.raises(UserError, match=r"\A[^\n]+\Z") as caught:
        resolve_recipe(arg)
    return str(caught.value)


# ------------------------------------------------------------------------- what is bundled


def test_every_recipe_is_bundled_with_a_description():
    shipped = {r.name: r for r in bundled()}
    assert sorted(shipped) == [p.stem for p in recipe_files()]
    for path in recipe_files():
        recipe = shipped[path.stem]
        assert recipe.description, f"{path.name}: no leading comment to describe it"
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# " + recipe.description.removesuffix("…")[:40])
        assert recipe_text(path.stem) == path.read_text(encoding="utf-8")


def test_reported_results_agree_with_the_readme():
    """Each `# Reported:` line matches its row of README's recipe table, both ways."""
    for recipe in bundled():
        row = readme_row(recipe.name)
        assert recipe.reported, f"{recipe.name}.yaml: README reports {row!r}; add # Reported:"
        result = row.split("|")[3]  # | recipe | task | result | time | hardware |
        assert set(DECIMAL.findall(recipe.reported)) <= set(DECIMAL.findall(result)), recipe
        assert DECIMAL.findall(result)[0] in recipe.reported, recipe  # the headline number
        for number in NUMBER.findall(recipe.reported):
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)", README), (
                f"{recipe.name}.yaml: {number} in its Reported line is not in README.md"
            )
        assert ("not run here" in recipe.reported) == ("paper:" in result), recipe


def test_no_recipe_lets_the_machine_speed_decide_where_it_stops():
    """Epochs or steps bound every recipe; a max_minutes in one is only a safety cap, and
    says so, so a slow or busy machine trains longer instead of stopping undertrained."""
    for path in recipe_files():
        train = load_recipe(path).train
        assert train.max_epochs is not None or train.max_steps is not None, path.name
        capped = [line for line in path.read_text(encoding="utf-8").splitlines()
                  if line.strip().startswith("max_minutes:")]  # fmt: skip
        assert all("safety cap" in line for line in capped), (path.name, capped)
    assert load_recipe(RECIPES / "quickstart.yaml").train.max_minutes is None


def test_header_takes_the_first_sentence_and_the_reported_line():
    text = "#\n# Toy: a test,\n# more words. And more.\n#\n# Other.\n# Reported: BLEU 1.5\n"
    text += "data: {}\n# Reported: no\n"
    assert header(text) == ("Toy: a test, more words", "BLEU 1.5")
    assert header("data: {}\n") == ("", None)
    long = "# " + "word " * 40 + "\ndata: {}\n"
    description, _ = header(long)
    assert description.endswith("word…") and len(description) <= 90


# ----------------------------------------------------------------------------- resolve_recipe


def test_resolve_recipe_takes_a_file_path_first(tmp_path, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text("data: {}\n", encoding="utf-8")
    assert resolve_recipe(str(mine)) == mine
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("data: {}\n", encoding="utf-8")
    assert resolve_recipe("quickstart") == Path("quickstart")  # a file here beats a name


@pytest.mark.parametrize("arg", ["quickstart", "quickstart.yaml", "multi30k_de_en_cpu"])
def test_resolve_recipe_finds_a_bundled_name(tmp_path, monkeypatch, arg):
    monkeypatch.chdir(tmp_path)  # nothing of that name here
    found = resolve_recipe(arg)
    expected = RECIPES / (arg if arg.endswith(".yaml") else f"{arg}.yaml")
    assert found.name == expected.name
    assert found.read_text(encoding="utf-8") == expected.read_text(encoding="utf-8")
    recipe = load_recipe(found)
    assert recipe.output_dir == str(Path("runs") / expected.stem)


def test_resolve_recipe_suggests_the_closest_name_for_a_typo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert refusal("quikstart") == (
        "recipe 'quikstart' not found: no such file and no bundled recipe of that name; "
        "did you mean 'quickstart'? (nmt recipes lists them)"
    )
    assert "did you mean 'quickstart'?" in refusal("recipes/quikstart.yaml")
    several = refusal("multi30k_de_en_gpu")
    assert "'multi30k_de_en_cpu'" in several and " or " in several
    assert refusal("zzzz").endswith("nmt recipes lists the bundled ones")


def test_resolve_recipe_says_a_model_directory_is_not_a_recipe(tmp_path, monkeypatch):
    model = tmp_path / "runs" / "quick"
    model.mkdir(parents=True)
    (model / "recipe.yaml").write_text("data: {}\n", encoding="utf-8")
    message = refusal(str(model))
    assert "is a model directory" in message and "nmt train wants a recipe" in message
    assert str(model / "recipe.yaml") in message
    monkeypatch.chdir(tmp_path)
    assert "is a directory, not a recipe file" in refusal("runs")


# -------------------------------------------------------------------------- nmt recipes


def test_recipes_lists_every_name_with_its_result():
    code, out, _ = cli()
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [p.stem for p in recipe_files()]
    for recipe in bundled():
        line = next(line for line in lines if line.split()[0] == recipe.name)
        assert recipe.description in line and recipe.reported and recipe.reported in line
    columns = {line.index(r.description) for line, r in zip(lines, bundled(), strict=True)}
    assert len(columns) == 1  # descriptions start in one column


def test_recipes_show_prints_the_file_unchanged_and_it_loads(tmp_path):
    code, out, _ = cli("show", "quickstart")
    assert code == 0
    assert out == (RECIPES / "quickstart.yaml").read_text(encoding="utf-8")
    mine = tmp_path / "my.yaml"
    mine.write_text(out, encoding="utf-8")
    recipe = load_recipe(mine)
    assert recipe.data.source_lang == "en" and recipe.output_dir == str(Path("runs") / "my")
    assert cli("show", "quickstart.yaml")[1] == out


def test_recipes_show_suggests_a_name_for_a_typo():
    code, out, err = cli("show", "quikstart")
    assert code == 1 and out == ""
    assert "error: no bundled recipe 'quikstart'; did you mean 'quickstart'?" in err


# ------------------------------------------------------------------------------ packaging


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None, reason="builds a wheel with setuptools"
)
def test_packaging_wheel_ships_recipes_and_resolves_them_outside_the_checkout(tmp_path):
    """Build a wheel offline from a copy of this checkout (so no build/ lands in it),
    install it into a folder, and resolve `quickstart` from a cwd outside the checkout."""
    source = tmp_path / "source"
    junk = (".git", ".venv", "__pycache__", ".*_cache", "runs", "build", "dist", "*.egg-info")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*junk))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    offline = ["--no-index", "--no-deps"]
    run([*pip, "wheel", *offline, "--no-build-isolation", "-w", str(tmp_path), str(source)])
    (wheel,) = tmp_path.glob("recurrent_nmt-*.whl")  # PyPI's "nmt" is another project
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {"nmt/recipes/quickstart.yaml", "nmt_runtime/serve/web/index.html"}
    shipped |= {"nmt/recipe/bundled.py", "nmt_runtime/serve/app.py"}
    assert shipped <= names
    assert "nmt/cli/main.py" in names
    tops = {name.split("/")[0] for name in names if not name.startswith("recurrent_nmt-")}
    # nmt_runtime: the torch-free runtime (runtime/), shipped too so that nmt translate
    # reads an exported directory; nothing else, and no top-level 'cli'
    assert tops == {"nmt", "nmt_runtime"}, f"the wheel's top-level packages: {tops}"
    assert {f"nmt/recipes/{p.name}" for p in recipe_files()} <= names
    site = tmp_path / "site"
    run([*pip, "install", *offline, "--target", str(site), str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import nmt, nmt.recipe.bundled; print(nmt.__file__); "
        "path = nmt.recipe.bundled.resolve_recipe('quickstart'); print(path); "
        "print(nmt.load_recipe(path).output_dir); "
        "import nmt.cli.main; print(nmt.cli.main.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    done = run([sys.executable, "-c", code], cwd=elsewhere, env=env)
    module, recipe, output_dir, cli = done.stdout.splitlines()[-4:]
    assert Path(cli).resolve().is_relative_to(site.resolve()), done.stdout
    assert Path(module).resolve().is_relative_to(site.resolve()), done.stdout
    assert Path(recipe).resolve().is_relative_to(site.resolve()), done.stdout
    assert Path(recipe).read_text(encoding="utf-8") == recipe_text("quickstart")
    assert output_dir == str(Path("runs") / "quickstart")
