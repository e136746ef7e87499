"""The package as setup.cfg declares it: every folder of code listed, the data found by name.

scripts/check-wheel installs the real wheel; these checks name the cause
faster when a new subpackage or data folder is left out.
"""

import configparser
from importlib import resources
from pathlib import Path

from tests.conftest import REPO


def declared():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    packages = parser["options"]["packages"].split()
    folders = dict(
        line.split(" = ")
        for line in parser["options"]["package_dir"].strip().splitlines()
        if line.strip()
    )
    return packages, folders


def folder_of(package, folders):
    """Where a package's files live in the checkout, through setup.cfg's package_dir."""
    for mapped, folder in sorted(folders.items(), key=lambda item: -len(item[0])):
        if package == mapped or package.startswith(mapped + "."):
            rest = package[len(mapped) :].lstrip(".").split(".")
            return REPO / folder / Path(*[part for part in rest if part])
    return REPO / Path(*package.split("."))


def test_every_folder_of_code_is_a_listed_package():
    packages, folders = declared()
    expected = set()
    for root, prefix in [(REPO / "affair", "affair")] + [
        (REPO / folder, mapped) for mapped, folder in folders.items()
    ]:
        for init in root.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(root).parts
            expected.add(".".join((prefix, *relative)))
    assert set(packages) == expected


def test_every_listed_package_exists_where_package_dir_says():
    packages, folders = declared()
    for package in packages:
        assert (folder_of(package, folders) / "__init__.py").is_file(), package


def test_the_shipped_config_and_the_page_assets_are_found_as_package_data():
    config = resources.files("affair.config.shipped")
    assert (config / "affair.toml").read_text().startswith("# affair.toml")
    web = resources.files("affair.outputs.web_static")
    assert {"style.css", "site.js"} <= {entry.name for entry in web.iterdir()}
    assert (web / "templates" / "index.html").is_file()


def test_the_node_side_imports_as_affair_collectors():
    import affair.collectors.probes as probes

    assert Path(probes.__file__).resolve().parent == REPO / "collectors" / "probes"
