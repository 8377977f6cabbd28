"""Package discovery, the one thing pyproject.toml cannot say here.

Every package under ``llmreg/`` is found by setuptools, so a new subpackage ships
without anyone listing it. The CLI's folder ``cli/`` is installed as ``llmreg_cli``
(with its subpackages, if it grows some), so that no package called ``cli`` ever lands
in site-packages: ``[tool.setuptools.packages.find]`` can find packages but not rename
them. Metadata, dependencies and package data stay in ``pyproject.toml``;
``tests/test_packaging.py`` builds the wheel and the sdist and checks both.
"""

from setuptools import find_packages, setup

CLI_FOLDER, CLI_PACKAGE = "cli", "llmreg_cli"

setup(
    packages=[
        *find_packages(include=["llmreg", "llmreg.*"]),
        *(CLI_PACKAGE + name.removeprefix(CLI_FOLDER)
          for name in find_packages(include=[CLI_FOLDER, f"{CLI_FOLDER}.*"])),
    ],
    package_dir={CLI_PACKAGE: CLI_FOLDER},
)
