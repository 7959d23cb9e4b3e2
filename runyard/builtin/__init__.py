"""The task types that ship with Runyard, installed by the server when it starts.

``packages/`` holds them as ordinary task type packages (``metadata.json``,
``interface.json``, ``main.py``): ``Lucid.Util.SearchFolderFilesBySuffix`` (its code is
``runyard.builtin.search``) and the source and add tasks ``XF.Data.SelectFolder``,
``XF.Data.SelectForeignFile``, ``XF.Data.AddForeignFile``, ``XF.Data.SelectImage`` and
``XF.Data.AddImage``, whose jobs are created with their outputs;
``Lucid.Util.RelativeUserDataImage`` (an image found through a template relative to a User
Data file; its code is ``runyard.builtin.relative``); and the image task types
``Runyard.Image.Threshold``, ``Runyard.Image.Statistics`` and ``Runyard.Image.StudyTable``
(their code is ``runyard.builtin.images``), with the two XamFlow documents,
``Lucid.Core.Threshold`` and ``Lucid.CLIP.StatMinMax`` (``runyard.builtin.lucid``, thin over
``images``). See docs/builtin.md.

A new built-in is a new folder in ``packages/``: the server installs every folder there.
"""

from __future__ import annotations

from pathlib import Path

PACKAGES = Path(__file__).resolve().parent / "packages"


def package_folders() -> list[Path]:
    """The folders of the built-in task type packages, by name."""
    return sorted(p for p in PACKAGES.iterdir() if (p / "metadata.json").is_file())
