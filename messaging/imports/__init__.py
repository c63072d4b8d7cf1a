"""Excel imports: an uploaded .xlsx processed as a background job, with progress and a per-row report.

An area registers an import handler for its kind (case groups, bulk case upload);
starting an import checks the upload cheaply and queues a job that claims it, checks
and counts the sheet, processes its rows in batches (recording a result per row with
the rows' changes), writes the .xlsx report and can resume after its worker died.

Modules:
- ``handlers``: ``ImportHandler``, ``RowOutcome`` and the registry of handlers by kind.
- ``start``: check an upload cheaply, store it and queue the job.
- ``claim``: one run at a time; taking over an import whose worker died.
- ``runner``: the job: check and count the sheet, read it in batches, store the report.
- ``batches``: one batch processed (or planned and applied) and recorded; a failing batch row by row.
- ``writer``: the PostgreSQL writer thread applying and recording batches beside the planning.
- ``outcomes``: record a batch's results with the progress; read the results back in row order.
- ``files``: the stored upload and report, in pieces on PostgreSQL.
- ``sweep``: the periodic re-queue of imports whose job vanished.
- ``serialize``: the JSON of an import and of one row's result.
- ``opt_outs``: the handler of kind ``opt_out``: a list of opted-out numbers brought from another system.
"""
