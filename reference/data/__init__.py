"""The SIGNS data layer: loading, importing and batching, once, in NumPy.

Modules: :mod:`~reference.data.layout` (splits, image shape, classes),
:mod:`~reference.data.paths` (where a split lives), :mod:`~reference.data.course_h5` (the
course's h5 files), :mod:`~reference.data.images` (image folders),
:mod:`~reference.data.dataset` (loading and preprocessing), :mod:`~reference.data.batches`
(the course's mini-batches) and :mod:`~reference.data.importer` (image folder -> h5).

Every backend trains and is checked on the arrays this package returns; frameworks only ever
receive NumPy arrays.

Files and layouts
-----------------
A data directory holds, for each split (``train``, ``test``), one of (first match wins):

1. ``{split}_signs.h5``: the course's layout, ``{split}_set_x`` uint8 (m, 64, 64, 3) NHWC RGB,
   ``{split}_set_y`` integer (m,), ``list_classes`` integer (6,) = 0..5, and optionally
   ``{split}_set_files`` (m,) UTF-8 strings (written by
   :func:`~reference.data.importer.import_images` to trace images);
2. an image folder ``{split}/`` or ``jpg/{split}/`` whose files are named ``{label}_...``
   (e.g. ``3_IMG_5864.jpg``), read into memory by the same reader as the importer.

The course's functions keep the course's semantics: :func:`~reference.data.dataset.load_dataset` returns
``X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes`` with labels shaped (1, m);
:func:`~reference.data.dataset.convert_to_one_hot` returns (C, m);
:func:`~reference.data.batches.random_mini_batches` reseeds NumPy's *global*
RNG exactly as the course does. :func:`~reference.data.dataset.load_signs` is the notebook's preprocessing cell
(``X / 255.`` and one-hot ``Y`` (m, 6)) plus a record of which files were used.
"""
