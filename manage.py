#!/usr/bin/env python
"""photoevent's command line: Django's manage.py, with DATA_DIR prepared first."""

import os
import re
import sys

from django.core.management import execute_from_command_line
from django.db import DatabaseError, OperationalError, ProgrammingError, connections
from django.utils.translation import gettext as _

from photoevent.datadir import data_dir_from_env, prepare_data_dir

# What SQLite and PostgreSQL say when a table or column the code expects is
# missing: the database was never migrated, or is older than the code.
MISSING_SCHEMA = re.compile(r"no such (table|column)|(relation|column) \S+ does not exist", re.IGNORECASE)


def unmigrated_database_advice(exc: DatabaseError) -> str | None:
    """What to run instead, when `exc` says the database lacks the project's tables; None otherwise."""
    if not MISSING_SCHEMA.search(str(exc)):
        return None
    database = connections["default"].settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        where = str(database["NAME"])
    else:
        where = f"{database['NAME']} on {database['HOST'] or 'localhost'}"
    return _(
        "The database %(database)s is not migrated (%(error)s).\n"
        "DATA_DIR is %(data_dir)s.\n"
        "Run `python manage.py migrate` to create or update its tables, or point DATA_DIR "
        "(or SQLITE_PATH, DATABASE_URL) at the installation you meant."
    ) % {"database": where, "error": exc, "data_dir": data_dir_from_env()}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
    prepare_data_dir()
    try:
        execute_from_command_line(sys.argv)
    except (OperationalError, ProgrammingError) as exc:
        advice = unmigrated_database_advice(exc)
        if advice is None or "--traceback" in sys.argv:
            raise
        sys.stderr.write(advice + "\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
