"""Output metadata keys the report pages write and the HTML post-processing reads."""

#: Marks an output as a page's error box (the traceback that follows it is dropped from the page).
ERROR_OUTPUT_MARKER = "vfiobench-error"

#: Output metadata key holding the A/B verdict lines (copied to the index page).
VERDICTS_MARKER = "vfiobench-verdicts"
