"""Instructor and maintainer tooling: release, self-check and (later) grade.

Teaching code never imports this subpackage. It needs the ``[instructor]`` extra (nbgrader).
Every Make target calls a command of :mod:`segedu.instructor.cli`, so Windows users without
``make`` can run ``python -m segedu.instructor <command>``.
"""
