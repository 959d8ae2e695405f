"""nbgrader configuration of the course (run nbgrader from the course folder).

solutions/ is the instructor's source, exercises/ the generated student version (committed). The
course commands (`make release`, `make course`, `segedu ...`) always run nbgrader in a copy of
the course inside build/, so gradebooks and submissions never land in the repository.
"""

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = "segedu"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# A graded notebook needs a few seconds in all; 30 s per cell stops an endless loop early.
c.Execute.timeout = 30
# A kernel that stops answering must not hang the whole grading run.
c.Execute.interrupt_on_timeout = True

# The verdict is computed outside the student's kernel (segedu/instructor/verdict.py): TrustedRun
# replaces each test cell by a call that only saves what the student's functions return on the
# plan's inputs; TrustedVerdict compares in this process and writes every test cell's outputs.
c.Autograde.autograde_preprocessors = [
    "segedu.instructor.verdict.TrustedRun",
    "nbgrader.preprocessors.Execute",
    "segedu.instructor.verdict.TrustedVerdict",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# A test cell deleted by a student is put back from the release and graded (not silently skipped).
c.OverwriteCells.add_missing_cells = True

# stderr in a test cell (warnings, tqdm bars) cannot zero it: TrustedVerdict writes test cells' outputs.

# Feedback must not reveal hidden tests: shorten the tracebacks of hidden-test cells, then drop the
# hidden regions from their source.
c.GenerateFeedback.exporter_class = "segedu.instructor.feedback.FeedbackHTMLExporter"   # templates compiled once
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "segedu.instructor.feedback.ShortenHiddenTracebacks",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
