"""Streaming: images pulled through the filter in bands of output rows.

The pipeline is pull-driven, as libvips' sinks are: a sink asks for the next
band of output rows, the renderer (:mod:`convcli.pipeline.render`) asks the
source for the input rows that band needs (:mod:`convcli.pipeline.bands`
says which), runs the core on them and maps the result to pixels. No stage
holds the whole image in float: the input is read by region where the format
allows it (TIFF, ``.npy``, zarr; :mod:`convcli.pipeline.sources`) and the
output is encoded as bands arrive (PNG, TIFF, ``.npy``, zarr;
:mod:`convcli.pipeline.sinks`).

Modules
-------
bands
    Pure row arithmetic: which input rows an output band needs (forward and
    transposed), the border's row map, band heights from a memory budget.
sources
    :class:`~convcli.pipeline.sources.Source` objects: ``read_rows(start, stop)``
    of the native pixels, opened lazily, picklable.
sinks
    Writers fed band by band (``write_rows``, then ``commit``) that write a
    file atomically (temporary name, rename on commit; ``abort`` removes it).
render
    ``render_rows``: one band of maps from a source, the one function every
    executor (local loop, process pool, Dask block) calls.
"""
