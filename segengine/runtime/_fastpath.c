/* segengine.runtime._fastpath: the common case of Engine.ingest in one C call.
 *
 * Why C: a single event through Python and Numba's argument unboxing costs ~1.8 us, of
 * which the rule kernel itself is ~0.2-0.3 us. Here the checks and id lookups that
 * engine.py's fast path does in Python run in C, and the event kernel (compiled by Numba
 * as a C function, see CompiledRules.event_cfunc) is called directly.
 *
 * Contract: an engine's ``ingest`` is FastPath.ingest (engine.py, Engine._bind_kernel).
 * It decodes JSON bytes with msgspec's decoder, checks the event exactly as engine.py's
 * Python ingest does, looks the ids up in the engine's own dicts and calls the kernel. It
 * returns [] when the kernel reports no actions, and hands everything else to Python:
 * ``finish(pending, event)`` builds the actions (or makes room and calls again with
 * last_args()); ``full_path(event)`` -- Engine.ingest's Python code -- takes every event
 * that is unusual in any way (a missing or mistyped field, a new viewer, room or item, a
 * retention sweep point, undecodable bytes), before anything changed. So this file
 * decides nothing that engine.py does not also decide. Which fields an event has, their
 * names, ranges and kernel columns, it is told by segengine/schema/fields.py (the one table
 * of the event schema) when a FastPath is built; what it knows is what each role means.
 *
 * Optional: setup.py builds it when a C compiler is there; without it engine.py runs the
 * same checks in Python (slower, same results; tests/test_fastpath.py compares the two).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <pythread.h>

/* the event kernel, as INGEST_EVENT_CSIG in segengine/compiler/__init__.py: (tab_addr, *row, index),
 * the row being segengine/schema/fields.py's EVENT_ROW (ROW_DTYPES below, checked at FastPath init) */
typedef int64_t (*kernel_t)(int64_t tab_addr, int64_t slot, int64_t vid, int64_t room, int64_t code,
                            double ts, int64_t item, int64_t cat, double price, double amount,
                            int64_t text, int64_t index);

#define FULL_PATH (-2)    /* == kernels.runtime.UNKNOWN_VIEWER: Python's full path takes both */

/* An engine's one-thread-at-a-time guard (Engine._guard). Engines are single-threaded; a
 * second thread calling in while a call runs (the batch kernels release the GIL, and any
 * call back into Python may switch threads) would corrupt the state arrays, or free an
 * array a kernel is writing into. Every public entry of Engine enters the guard (``with
 * engine._guard:``), and FastPath.ingest does the same in C: the first (outermost) entry
 * records the calling thread; entries from that thread nest (a depth count), entries from
 * any other thread raise ``error(owner, caller)`` (segengine.ConcurrentUseError) before
 * anything is read or changed. Its check and set run with the GIL held and without
 * running Python code in between, so they are atomic against other Python threads. */
typedef struct {
    PyObject_HEAD
    unsigned long owner; /* PyThread_get_thread_ident() of the thread inside a call; 0: none */
    Py_ssize_t depth;    /* nested entries of that thread */
    PyObject *error;     /* called with (owner, caller) to build the exception */
} Guard;

static PyTypeObject GuardType;

/* raise the guard's error for a call from thread ``me``; returns NULL */
static PyObject *guard_refuse(Guard *g, unsigned long me) {
    PyObject *exc = PyObject_CallFunction(g->error, "kk", g->owner, me);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* enter for thread ``me``: 0 on success, -1 with the error set */
static inline int guard_enter(Guard *g, unsigned long me) {
    if (g->owner != me) {
        if (g->owner != 0) {
            guard_refuse(g, me);
            return -1;
        }
        g->owner = me;
    }
    g->depth++;
    return 0;
}

static inline void guard_exit(Guard *g) {
    if (--g->depth == 0)
        g->owner = 0;
}

static int Guard_init(Guard *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"error", NULL};
    PyObject *error;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &error))
        return -1;
    if (!PyCallable_Check(error)) {
        PyErr_SetString(PyExc_TypeError, "Guard: error must be callable");
        return -1;
    }
    Py_INCREF(error);
    Py_XSETREF(self->error, error);
    return 0;
}

static int Guard_traverse(Guard *self, visitproc visit, void *arg) {
    Py_VISIT(self->error);
    return 0;
}

static int Guard_clear(Guard *self) {
    Py_CLEAR(self->error);
    return 0;
}

static void Guard_dealloc(Guard *self) {
    PyObject_GC_UnTrack(self);
    Guard_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Guard_enter(Guard *self, PyObject *Py_UNUSED(ignored)) {
    if (self->error == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Guard: not initialised");
        return NULL;
    }
    if (guard_enter(self, PyThread_get_thread_ident()) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Guard_exit(Guard *self, PyObject *const *args, Py_ssize_t nargs) {
    if (self->depth <= 0 || self->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "Guard: __exit__ without a matching __enter__ in this thread");
        return NULL;
    }
    guard_exit(self);
    Py_RETURN_FALSE; /* never swallows the exception */
}

static PyObject *Guard_get_owner(Guard *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLong(self->owner);
}

static PyMethodDef Guard_methods[] = {
    {"__enter__", (PyCFunction)Guard_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nEnter a call: raises the guard's error if another thread is inside one."},
    {"__exit__", (PyCFunction)(void (*)(void))Guard_exit, METH_FASTCALL,
     "__exit__($self, /, *exc_info)\n--\n\nLeave a call (the outermost exit frees the guard)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Guard_getset[] = {
    {"owner", (getter)Guard_get_owner, NULL, "thread ident of the thread inside a call (0: none)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject GuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "segengine.runtime._fastpath.Guard",
    .tp_doc = "Guard(error)\n--\n\nOne engine's one-thread-at-a-time guard: a context manager that nests "
              "within a thread and raises error(owner, caller) for any other thread.",
    .tp_basicsize = sizeof(Guard),
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_clear = (inquiry)Guard_clear,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Guard_init,
    .tp_methods = Guard_methods,
    .tp_getset = Guard_getset,
};
/* The event's fields are not listed here: segengine/schema/fields.py holds the one table of
 * them, and an engine hands it over when it builds its FastPath (``fields``: per field its
 * name, role, kernel column, whether viewer events require it, and its accepted range). What
 * this file knows is what each *role* (a kind of field, fields.py's ``_C_ROLES``) means: how a
 * value of it is checked and turned into the kernel's argument. */
enum role { R_TYPE, R_TIME, R_ID, R_ROOM, R_STR, R_CATEGORY, R_NUM, R_TEXT, N_ROLES };
#define MAX_FIELDS 16
/* The kernel's row (fields.EVENT_ROW) as kernel_t takes it, one letter per column (i: int64,
 * f: double); the engine passes its own (``row``), which must be this one. */
#define ROW_DTYPES "iiiifiiffi"
#define ROW_LEN 10
#define ROW_CALL(i, f) (i)[0], (i)[1], (i)[2], (i)[3], (f)[4], (i)[5], (i)[6], (f)[7], (f)[8], (i)[9]

typedef struct {
    PyObject *name; /* borrowed from the FastPath's ``fields`` tuple, which it keeps */
    int role, col, required;
    double lo, hi; /* accepted range: time lo <= x < hi, num lo < x < hi */
    Py_ssize_t slot; /* where an Event keeps it (a __slots__ offset), -1: unknown */
} field_t;

/* Every Python object a FastPath holds (also its constructor's keyword arguments, in order,
 * after kernel, tab_addr and matrices): one list for init, traverse and clear. */
#define FASTPATH_OBJECTS(X) X(keep) X(viewer_codes) X(viewer_ids) X(room_ids) X(string_ids) X(cat_codes) \
    X(retention) X(event_type) X(decode) X(full_path) X(finish) X(guard) X(fields) X(row) X(text_codes) X(text_value)

typedef struct {
    PyObject_HEAD
    kernel_t kernel;
    int64_t *tab; /* the pointer table (Store.tab); the kernel takes its address as an int */
    /* the pointer table's matrix numbers (kernels.runtime.M_*) of the viewer state (int, float,
     * uint16 columns) and of the int viewer id index */
    Py_ssize_t m_vi, m_vf, m_vn, m_vids;
    /* how much of a viewer's VI, VF and VN rows to start loading for an event whose type code
     * is not in tail_types (bit per code below 64): the columns before the rows' tail, which
     * only events of those types read (compiler/layout.py tail_from); their events (and any
     * code from 64) load the whole rows */
    Py_ssize_t hot_vi, hot_vf, hot_vn;
    unsigned long long tail_types;
    /* keep: what the two addresses above point into, kept alive; the engine's lookup dicts
     * and retention schedule; Event; the Python callables of the contract above; the
     * engine's Guard (it outlives this FastPath when a reload replaces it) */
#define DECLARE(name) PyObject *name;
    FASTPATH_OBJECTS(DECLARE)
#undef DECLARE
    /* the event's fields (an Event keeps them in __slots__, as the retention schedule its
     * ``due``: reading a slot is a load, a getattr ~15 ns); n_required: how many viewer events
     * require (a dict of only those holds nothing optional) */
    field_t f[MAX_FIELDS];
    int n_fields, n_required;
    /* the four roles a viewer event requires, one field each (straight-line code below), and the
     * optional fields by role (a short loop each, with no switch: ~10 ns less than one loop) */
    const field_t *f_type, *f_time, *f_id, *f_room;
    const field_t *o_num[MAX_FIELDS], *o_text[MAX_FIELDS], *o_str[MAX_FIELDS], *o_cat[MAX_FIELDS];
    int n_num, n_text, n_str, n_cat;
    Py_ssize_t due_slot;
    /* the arguments of the last kernel call (the row), for a retry once the output buffer is drained */
    int64_t a_i[ROW_LEN];
    double a_f[ROW_LEN];
} FastPath;

static PyObject *s_due, *s_empty;

/* The offset of attribute ``name`` of ``type`` if it is a plain object slot (a member
 * descriptor, as __slots__ and msgspec Struct fields are), else -1. */
static Py_ssize_t slot_offset(PyTypeObject *type, PyObject *name) {
    PyObject *descr = PyObject_GetAttr((PyObject *)type, name);
    Py_ssize_t offset = -1;
    if (descr == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if ((m->type == T_OBJECT_EX || m->type == T_OBJECT) && m->offset > 0 &&
            m->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize)
            offset = m->offset;
    }
    Py_DECREF(descr);
    return offset;
}

/* the object in slot ``offset`` of ``obj`` (borrowed), or NULL when unset or unknown */
static inline PyObject *read_slot(PyObject *obj, Py_ssize_t offset) {
    return offset < 0 ? NULL : *(PyObject **)((char *)obj + offset);
}

/* Start loading row ``slot`` of matrix ``m`` (every cache line of its first ``upto`` bytes). At a million viewers
 * each row is a cache miss; started together, the misses overlap instead of coming one by
 * one as the kernel reaches each matrix. A hint only: nothing depends on it. */
static inline void prefetch_row(const int64_t *tab, Py_ssize_t m, int64_t slot, Py_ssize_t itemsize, Py_ssize_t upto) {
    const char *row = (const char *)(uintptr_t)tab[3 * m] + slot * tab[3 * m + 2] * itemsize;
    Py_ssize_t bytes = tab[3 * m + 2] * itemsize;
    if (upto < bytes) /* the columns before the tail (a part of the row: see FastPath.hot_vi) */
        bytes = upto;
    if (bytes <= 0)
        return;
    for (Py_ssize_t at = 0; at < bytes + 63; at += 64)
        __builtin_prefetch(row + (at < bytes ? at : bytes - 1));
}

/* The engine holds its FastPath and the FastPath holds the engine's methods: a cycle, so
 * the type takes part in garbage collection. */
static int FastPath_traverse(FastPath *self, visitproc visit, void *arg) {
#define VISIT(name) Py_VISIT(self->name);
    FASTPATH_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int FastPath_clear(FastPath *self) {
    self->kernel = NULL; /* what it points into may go with `keep` */
#define CLEAR(name) Py_CLEAR(self->name);
    FASTPATH_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

static void FastPath_dealloc(FastPath *self) {
    PyObject_GC_UnTrack(self);
    FastPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int FastPath_init(FastPath *self, PyObject *args, PyObject *kwds) {
    unsigned long long kernel, tab_addr;
    Py_ssize_t m_vi, m_vf, m_vn, m_vids, hot_vi, hot_vf, hot_vn;
    unsigned long long tail_types;
#define LOCAL(name) PyObject *name;
#define NAME(name) #name,
#define ADDRESS(name) , &name
    FASTPATH_OBJECTS(LOCAL)
    static char *kwlist[] = {"kernel", "tab_addr", "matrices", "prefetch", FASTPATH_OBJECTS(NAME) NULL};
    text_codes = text_value = Py_None; /* optional: rules without text predicates */
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "KK(nnnn)(nnnK)OOOOOOOOOOOOOO|OO", kwlist, &kernel, &tab_addr, &m_vi, &m_vf,
                                     &m_vn, &m_vids, &hot_vi, &hot_vf, &hot_vn, &tail_types FASTPATH_OBJECTS(ADDRESS)))
        return -1;
#undef LOCAL
#undef NAME
#undef ADDRESS
    if (!PyDict_CheckExact(viewer_codes) || !PyDict_CheckExact(viewer_ids) || !PyDict_CheckExact(room_ids) ||
        !PyDict_CheckExact(string_ids) || !PyDict_CheckExact(cat_codes)) {
        PyErr_SetString(PyExc_TypeError, "FastPath: the lookup tables must be dicts");
        return -1;
    }
    if ((text_codes != Py_None && !PyDict_CheckExact(text_codes)) || (text_value != Py_None && !PyCallable_Check(text_value))) {
        PyErr_SetString(PyExc_TypeError, "FastPath: text_codes must be a dict or None, text_value a callable or None");
        return -1;
    }
    if (!PyCallable_Check(decode) || !PyCallable_Check(full_path) || !PyCallable_Check(finish)) {
        PyErr_SetString(PyExc_TypeError, "FastPath: decode, full_path and finish must be callable");
        return -1;
    }
    if (!PyObject_TypeCheck(guard, &GuardType)) {
        PyErr_SetString(PyExc_TypeError, "FastPath: guard must be a Guard");
        return -1;
    }
    if (kernel == 0 || tab_addr == 0 || m_vi < 0 || m_vf < 0 || m_vn < 0 || m_vids < 0) {
        PyErr_SetString(PyExc_ValueError, "FastPath: null kernel or table");
        return -1;
    }
    self->kernel = (kernel_t)(uintptr_t)kernel;
    self->tab = (int64_t *)(uintptr_t)tab_addr;
    self->m_vi = m_vi, self->m_vf = m_vf, self->m_vn = m_vn, self->m_vids = m_vids;
    self->hot_vi = hot_vi, self->hot_vf = hot_vf, self->hot_vn = hot_vn, self->tail_types = tail_types;
    if (!PyUnicode_Check(row) || PyUnicode_CompareWithASCIIString(row, ROW_DTYPES) != 0) {
        PyErr_SetString(PyExc_TypeError, "FastPath: row must be \"" ROW_DTYPES "\" (the kernel_t this was built for)");
        return -1;
    }
    if (!PyTuple_CheckExact(fields) || PyTuple_GET_SIZE(fields) > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "FastPath: fields must be a tuple of at most 16 fields");
        return -1;
    }
    int n = (int)PyTuple_GET_SIZE(fields), required = 0, roles = 0;
    self->n_num = self->n_text = self->n_str = self->n_cat = 0;
    const field_t *by_role[N_ROLES] = {NULL};
    for (int i = 0; i < n; i++) {
        field_t *fd = &self->f[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(fields, i), "Uiipdd", &fd->name, &fd->role, &fd->col, &fd->required,
                              &fd->lo, &fd->hi))
            return -1;
        if (fd->role < 0 || fd->role >= N_ROLES || fd->col < 0 || fd->col >= ROW_LEN ||
            ROW_DTYPES[fd->col] != ((fd->role == R_TIME || fd->role == R_NUM) ? 'f' : 'i') ||
            (fd->role == R_ID && (fd->col + 1 >= ROW_LEN || ROW_DTYPES[fd->col + 1] != 'i'))) {
            PyErr_Format(PyExc_ValueError, "FastPath: field %R: bad role or kernel column", fd->name);
            return -1;
        }
        /* type, time, viewer and room: one field each, required (by viewer events); the others optional */
        int must = fd->role == R_TYPE || fd->role == R_TIME || fd->role == R_ID || fd->role == R_ROOM;
        if (must != fd->required || (must && by_role[fd->role])) {
            PyErr_Format(PyExc_ValueError, "FastPath: field %R: the fast path needs one required field each of type, "
                                           "time, id and room, and every other field optional", fd->name);
            return -1;
        }
        by_role[fd->role] = fd;
        if (fd->role == R_NUM)
            self->o_num[self->n_num++] = fd;
        else if (fd->role == R_TEXT)
            self->o_text[self->n_text++] = fd;
        else if (fd->role == R_STR)
            self->o_str[self->n_str++] = fd;
        else if (fd->role == R_CATEGORY)
            self->o_cat[self->n_cat++] = fd;
        fd->slot = PyType_Check(event_type) ? slot_offset((PyTypeObject *)event_type, fd->name) : -1;
        required += fd->required;
        roles |= 1 << fd->role;
    }
    /* every role at least once: the kernel's row has a column for each */
    if (roles != (1 << N_ROLES) - 1) {
        PyErr_SetString(PyExc_ValueError, "FastPath: fields must hold every role");
        return -1;
    }
    self->n_fields = n, self->n_required = required;
    self->f_type = by_role[R_TYPE], self->f_time = by_role[R_TIME], self->f_id = by_role[R_ID];
    self->f_room = by_role[R_ROOM];
    self->due_slot = slot_offset(Py_TYPE(retention), s_due);
#define KEEP(name) Py_INCREF(name); Py_XSETREF(self->name, name);
    FASTPATH_OBJECTS(KEEP)
#undef KEEP
    return 0;
}

/* a float (exactly: no subclass, as engine.py's ``type(x) is float``) within [lo, hi) (time)
 * or (lo, hi) (num): false for NaN and infinities */
static inline int float_in(PyObject *o, const field_t *fd, double *out) {
    if (!PyFloat_CheckExact(o))
        return 0;
    double x = *out = PyFloat_AS_DOUBLE(o);
    return fd->role == R_TIME ? (x >= fd->lo && x < fd->hi) : (x > fd->lo && x < fd->hi);
}

/* a str that encodes as UTF-8 (no lone surrogate): ASCII is a flag read; otherwise the UTF-8
 * form is built (and cached in the str), which fails on a surrogate (the caller clears the error) */
static inline int encodable(PyObject *s) {
    return PyUnicode_IS_ASCII(s) || PyUnicode_AsUTF8AndSize(s, NULL) != NULL;
}

/* The kernel's row for ``event`` (into self->a_i, a_f) and the kernel's result, or FULL_PATH
 * for anything Python's full path must judge or do first. The required fields by role, then
 * the optional ones by role: */
static int64_t fast_ingest(FastPath *self, PyObject *event) {
    const field_t *f_type = self->f_type, *f_time = self->f_time, *f_id = self->f_id, *f_room = self->f_room;
    PyObject *t, *ts_o, *room_o, *viewer, *id;
    int64_t *row = self->a_i;
    double *frow = self->a_f;
    int64_t result = FULL_PATH;
    int from_dict, all = 1;

    if (PyDict_CheckExact(event)) { /* borrowed references: nothing below runs Python code */
        from_dict = 1;
        t = PyDict_GetItemWithError(event, f_type->name);
        ts_o = PyDict_GetItemWithError(event, f_time->name);
        room_o = PyDict_GetItemWithError(event, f_room->name);
        viewer = PyDict_GetItemWithError(event, f_id->name);
        if (!t || !ts_o || !room_o || !viewer) /* missing (or a room event): the full path */
            goto done;
        all = PyDict_Size(event) != self->n_required; /* the required keys only: nothing optional */
    } else if ((PyObject *)Py_TYPE(event) == self->event_type) { /* an Event (msgspec Struct): its slots */
        from_dict = 0;
        if (!(t = read_slot(event, f_type->slot)) || !(ts_o = read_slot(event, f_time->slot)) ||
            !(room_o = read_slot(event, f_room->slot)) || !(viewer = read_slot(event, f_id->slot)))
            goto done;
    } else {
        return FULL_PATH;
    }
    if (PyErr_Occurred())
        goto done;

    /* an int viewer id within the dense index: start loading its entry now (a cache miss at
     * scale), the checks and lookups below run meanwhile */
    const int64_t *vids = (const int64_t *)(uintptr_t)self->tab[3 * self->m_vids];
    int64_t vid = -1;
    if (PyLong_CheckExact(viewer)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(viewer, &overflow);
        if (!overflow && v >= 0 && v < self->tab[3 * self->m_vids + 1]) {
            vid = v;
            __builtin_prefetch(vids + vid);
        }
    } else if (!PyUnicode_CheckExact(viewer)) {
        goto done;
    }
    double ts;
    if (!PyUnicode_CheckExact(t) || !PyUnicode_CheckExact(room_o) || !float_in(ts_o, f_time, &ts))
        goto done;
    if (!(id = PyDict_GetItemWithError(self->viewer_codes, t))) /* room events are not there: the full path */
        goto done;
    row[f_type->col] = PyLong_AsLongLong(id);
    if (!(id = PyDict_GetItemWithError(self->room_ids, room_o))) /* a new room: the full path interns it */
        goto done;
    row[f_room->col] = PyLong_AsLongLong(id);
    frow[f_time->col] = ts;

    /* the optional fields, by role: absent (or None) reads as absent */
#define OPTIONAL_VALUE(fd) (from_dict ? (all ? PyDict_GetItemWithError(event, (fd)->name) : NULL) : read_slot(event, (fd)->slot))
    for (int k = 0; k < self->n_num; k++) { /* a float within its range; absent: NaN */
        PyObject *v = OPTIONAL_VALUE(self->o_num[k]);
        if (v == NULL || v == Py_None)
            frow[self->o_num[k]->col] = NAN;
        else if (!float_in(v, self->o_num[k], &frow[self->o_num[k]->col]))
            goto done;
    }
    /* text_codes None: checked only (engine.py builds no FastPath.ingest for rules that compare it);
     * a dict (rules with text predicates, segengine.text): the text's value when seen before,
     * else text_value(text) computes (and caches) it, called last, once nothing borrowed is
     * needed any more (no text_value: the full path) */
    PyObject *new_text = NULL;
    int new_text_col = -1;
    for (int k = 0; k < self->n_text; k++) {
        PyObject *v = OPTIONAL_VALUE(self->o_text[k]);
        if (v != NULL && v != Py_None && (!PyUnicode_CheckExact(v) || !encodable(v)))
            goto done;
        if (self->text_codes == Py_None) {
            row[self->o_text[k]->col] = -1;
            continue;
        }
        PyObject *key = (v == NULL || v == Py_None) ? s_empty : v;
        if (!(id = PyDict_GetItemWithError(self->text_codes, key))) {
            if (PyErr_Occurred() || self->text_value == Py_None || new_text != NULL)
                goto done;
            new_text = key, new_text_col = self->o_text[k]->col;
            continue;
        }
        row[self->o_text[k]->col] = PyLong_AsLongLong(id);
    }
    for (int k = 0; k < self->n_str; k++) { /* its string id; absent reads as ""; an unseen string: the full path interns it */
        PyObject *v = OPTIONAL_VALUE(self->o_str[k]);
        if (v == NULL || v == Py_None)
            v = s_empty;
        else if (!PyUnicode_CheckExact(v))
            goto done;
        if (!(id = PyDict_GetItemWithError(self->string_ids, v)))
            goto done;
        row[self->o_str[k]->col] = PyLong_AsLongLong(id);
    }
    for (int k = 0; k < self->n_cat; k++) { /* its code: 0 absent, -1 a category the rules do not name */
        PyObject *v = OPTIONAL_VALUE(self->o_cat[k]);
        int64_t code = 0;
        if (v != NULL && v != Py_None) {
            if (!PyUnicode_CheckExact(v))
                goto done;
            id = PyDict_GetItemWithError(self->cat_codes, v);
            if (!id && (PyErr_Occurred() || !encodable(v))) /* a declared category encodes (it came from the rules) */
                goto done;
            code = id ? PyLong_AsLongLong(id) : -1;
        }
        row[self->o_cat[k]->col] = code;
    }
#undef OPTIONAL_VALUE
    PyObject *due = read_slot(self->retention, self->due_slot); /* a sweep point: the full path */
    if (!due || !PyFloat_CheckExact(due) || !(ts < PyFloat_AS_DOUBLE(due)))
        goto done;

    /* the viewer's slot: from the dense index for int ids in it (as the kernel's BY_VIEWER_ID
     * lookup does), else from the dict; not there: a new viewer, which Python interns */
    int64_t slot;
    if (vid >= 0) {
        slot = vids[vid];
    } else {
        PyObject *slot_o = PyDict_GetItemWithError(self->viewer_ids, viewer);
        slot = slot_o ? PyLong_AsLongLong(slot_o) : -1;
        vid = 0;
    }
    if (slot < 0)
        goto done;
    int64_t code = row[f_type->col];
    int whole = code < 0 || code >= 64 || ((self->tail_types >> code) & 1);
    prefetch_row(self->tab, self->m_vi, slot, sizeof(int64_t), whole ? PY_SSIZE_T_MAX : self->hot_vi);
    prefetch_row(self->tab, self->m_vn, slot, sizeof(uint16_t), whole ? PY_SSIZE_T_MAX : self->hot_vn);
    prefetch_row(self->tab, self->m_vf, slot, sizeof(double), whole ? PY_SSIZE_T_MAX : self->hot_vf);
    row[f_id->col] = slot, row[f_id->col + 1] = vid; /* the viewer's columns: slot, then vid */
    if (PyErr_Occurred())
        goto done;
    if (new_text != NULL) { /* a text not seen before: its value from Python (the only Python code run here) */
        Py_INCREF(new_text);
        PyObject *value = PyObject_CallOneArg(self->text_value, new_text);
        Py_DECREF(new_text);
        if (value == NULL)
            goto done;
        row[new_text_col] = PyLong_AsLongLong(value);
        Py_DECREF(value);
        if (PyErr_Occurred())
            goto done;
    }
    result = self->kernel((int64_t)(uintptr_t)self->tab, ROW_CALL(row, frow), 0);
done:
    if (PyErr_Occurred())
        PyErr_Clear();
    return result;
}

static PyObject *ingest_guarded(FastPath *self, PyObject *event);

/* Engine.ingest: the whole call, including its calls back into Python, inside the engine's
 * guard (~2 ns: the thread ident and two compares) */
static PyObject *FastPath_ingest(FastPath *self, PyObject *event) {
    if (self->kernel == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FastPath: cleared");
        return NULL;
    }
    Guard *g = (Guard *)self->guard;
    if (guard_enter(g, PyThread_get_thread_ident()) < 0)
        return NULL;
    PyObject *result = ingest_guarded(self, event);
    guard_exit(g);
    return result;
}

static PyObject *ingest_guarded(FastPath *self, PyObject *event) {
    PyObject *decoded = NULL;
    if (PyBytes_CheckExact(event)) { /* JSON */
        decoded = PyObject_CallOneArg(self->decode, event);
        if (decoded == NULL) { /* not a valid event: Python raises the EventError and counts it */
            PyErr_Clear();
            return PyObject_CallOneArg(self->full_path, event);
        }
        event = decoded;
    }
    int64_t pending = fast_ingest(self, event);
    PyObject *result;
    if (pending == 0)
        result = PyList_New(0);
    else if (pending == FULL_PATH)
        result = PyObject_CallOneArg(self->full_path, event);
    else {
        PyObject *p = PyLong_FromLongLong(pending);
        result = p ? PyObject_CallFunctionObjArgs(self->finish, p, event, NULL) : NULL;
        Py_XDECREF(p);
    }
    Py_XDECREF(decoded);
    return result;
}

static PyObject *FastPath_last_args(FastPath *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyTuple_New(ROW_LEN);
    for (int k = 0; out && k < ROW_LEN; k++) {
        PyObject *x = ROW_DTYPES[k] == 'f' ? PyFloat_FromDouble(self->a_f[k]) : PyLong_FromLongLong(self->a_i[k]);
        if (!x) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, k, x);
    }
    return out;
}

/* call(tab_addr, *row, index): the kernel with explicit arguments (the full path's calls), as
 * Numba's ingest_event takes them */
static PyObject *FastPath_call(FastPath *self, PyObject *const *args, Py_ssize_t nargs) {
    if (self->kernel == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FastPath: cleared");
        return NULL;
    }
    if (nargs != ROW_LEN + 2) {
        PyErr_Format(PyExc_TypeError, "call() takes %d arguments (%zd given)", ROW_LEN + 2, nargs);
        return NULL;
    }
    int64_t n[ROW_LEN];
    double f[ROW_LEN];
    int64_t tab = PyLong_AsLongLong(args[0]), index = PyLong_AsLongLong(args[ROW_LEN + 1]);
    for (int k = 0; k < ROW_LEN; k++) {
        if (ROW_DTYPES[k] == 'f')
            f[k] = PyFloat_AsDouble(args[k + 1]);
        else
            n[k] = PyLong_AsLongLong(args[k + 1]);
    }
    if (PyErr_Occurred())
        return NULL;
    if (tab != (int64_t)(uintptr_t)self->tab) {
        PyErr_SetString(PyExc_ValueError, "call(): not this engine's table");
        return NULL;
    }
    return PyLong_FromLongLong(self->kernel(tab, ROW_CALL(n, f), index));
}

static PyMethodDef FastPath_methods[] = {
    {"ingest", (PyCFunction)FastPath_ingest, METH_O,
     "ingest($self, event, /)\n--\n\n"
     "Apply one event; return the actions of due timers, then of the event's rules (list[Action]).\n\n"
     "Engine.ingest in C: the common event in one call. Raises EventError (state untouched) on a\n"
     "malformed event, ConcurrentUseError when another thread is inside a call of this engine."},
    {"last_args", (PyCFunction)FastPath_last_args, METH_NOARGS,
     "the last kernel call's row (segengine.schema.fields.EVENT_ROW: slot, vid, room, code, ts, item, cat, price, amount, text)"},
    {"call", (PyCFunction)(void (*)(void))FastPath_call, METH_FASTCALL,
     "call(tab_addr, *row, index) -> kernel result (row: segengine.schema.fields.EVENT_ROW)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "segengine.runtime._fastpath.FastPath",
    .tp_doc = "One engine's C fast path: its kernel, its table and its lookup dicts.",
    .tp_basicsize = sizeof(FastPath),
    .tp_dealloc = (destructor)FastPath_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)FastPath_traverse,
    .tp_clear = (inquiry)FastPath_clear,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FastPath_init,
    .tp_methods = FastPath_methods,
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "segengine.runtime._fastpath",
    .m_doc = "Engine.ingest's common case in one C call.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL;
    INTERN(s_due, "due") INTERN(s_empty, "")
#undef INTERN
    if (PyType_Ready(&FastPathType) < 0 || PyType_Ready(&GuardType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastpath_module);
    if (!m)
        return NULL;
    Py_INCREF(&FastPathType);
    if (PyModule_AddObject(m, "FastPath", (PyObject *)&FastPathType) < 0) {
        Py_DECREF(&FastPathType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&GuardType);
    if (PyModule_AddObject(m, "Guard", (PyObject *)&GuardType) < 0) {
        Py_DECREF(&GuardType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
