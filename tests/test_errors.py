"""Our exceptions live in affair/errors.py, and each carries what a person needs to act on it."""

import ast
import builtins
import os

import pytest

from affair import errors
from affair.errors import AffairError, DataDirLocked, WriterFailed
from affair.ingest.recorder import DataDirLock
from tests.test_layers import modules

EXCEPTION_NAMES = {
    name
    for source in (builtins, errors)
    for name, value in vars(source).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def exception_classes_defined_in(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            bases = {
                base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                for base in node.bases
            }
            if bases & EXCEPTION_NAMES:
                yield node.name


def test_every_exception_class_lives_in_affair_errors():
    elsewhere = {
        (module, name)
        for module, path in modules()
        if module != "affair.errors"
        for name in exception_classes_defined_in(path)
    }
    assert elsewhere == set()


def test_our_errors_are_affair_errors():
    ours = [value for value in vars(errors).values() if isinstance(value, type)]
    assert all(issubclass(value, AffairError) for value in ours)
    assert len(ours) >= 16


def test_a_locked_data_dir_names_the_directory_and_the_holder(tmp_path):
    with DataDirLock(tmp_path), pytest.raises(DataDirLocked) as refused, DataDirLock(tmp_path):
        pass
    assert str(refused.value) == f"another recorder (pid {os.getpid()}) is using {tmp_path}"
    assert (refused.value.data_dir, refused.value.holder) == (str(tmp_path), str(os.getpid()))


def test_a_holder_that_wrote_no_pid_yet_is_not_named():
    assert str(DataDirLocked("/srv/affair/data")) == "another recorder is using /srv/affair/data"


def test_a_writer_that_died_at_start_says_its_exit_code():
    assert str(WriterFailed(-9)) == "the RRD writer exited at start (code -9)"
