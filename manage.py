#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearance_admin.settings")
    from django.core.management import execute_from_command_line
    if len(sys.argv) > 1:
        from clearance_admin.startup import SERVING_COMMANDS, require_secret_key
        if sys.argv[1] in SERVING_COMMANDS:
            import django
            django.setup()
            require_secret_key()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
