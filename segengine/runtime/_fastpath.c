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
 * decides nothing that engine.py does not also decide.
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

/* the event kernel, as INGEST_EVENT_CSIG in segengine/compiler/__init__.py */
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
/* The accepted ranges, as events.TS_MIN, TS_MAX and NUM_MAX (exported below; a test compares
 * them): ts in [TS_MIN, TS_MAX), price and amount in (-NUM_MAX, NUM_MAX). */
#define TS_MIN 0.0
#define TS_MAX 1e11
#define NUM_MAX 1e15

/* Every Python object a FastPath holds (also its constructor's keyword arguments, in order,
 * after kernel, tab_addr and matrices): one list for init, traverse and clear. */
#define FASTPATH_OBJECTS(X) X(keep) X(viewer_codes) X(viewer_ids) X(room_ids) X(string_ids) X(cat_codes) \
    X(retention) X(event_type) X(decode) X(full_path) X(finish) X(guard)

typedef struct {
    PyObject_HEAD
    kernel_t kernel;
    int64_t *tab; /* the pointer table (Store.tab); the kernel takes its address as an int */
    /* the pointer table's matrix numbers (kernels.runtime.M_*) of the viewer state (int, float,
     * uint16 columns) and of the int viewer id index */
    Py_ssize_t m_vi, m_vf, m_vn, m_vids;
    /* keep: what the two addresses above point into, kept alive; the engine's lookup dicts
     * and retention schedule; Event; the Python callables of the contract above; the
     * engine's Guard (it outlives this FastPath when a reload replaces it) */
#define DECLARE(name) PyObject *name;
    FASTPATH_OBJECTS(DECLARE)
#undef DECLARE
    /* where an Event keeps its nine fields and the retention schedule its ``due`` (both are
     * __slots__ classes: reading a slot is a load, a getattr ~15 ns); -1: use no fast path */
    Py_ssize_t event_slots[9], due_slot;
    /* the arguments of the last kernel call, for a retry once the output buffer is drained */
    int64_t a_slot, a_vid, a_room, a_code, a_item, a_cat;
    double a_ts, a_price, a_amount;
} FastPath;

static PyObject *s_type, *s_ts, *s_room, *s_viewer, *s_item, *s_category, *s_price, *s_amount, *s_text;
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

/* Start loading row ``slot`` of matrix ``m`` (every cache line of it). At a million viewers
 * each row is a cache miss; started together, the misses overlap instead of coming one by
 * one as the kernel reaches each matrix. A hint only: nothing depends on it. */
static inline void prefetch_row(const int64_t *tab, Py_ssize_t m, int64_t slot, Py_ssize_t itemsize) {
    const char *row = (const char *)(uintptr_t)tab[3 * m] + slot * tab[3 * m + 2] * itemsize;
    Py_ssize_t bytes = tab[3 * m + 2] * itemsize;
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
    Py_ssize_t m_vi, m_vf, m_vn, m_vids;
#define LOCAL(name) PyObject *name;
#define NAME(name) #name,
#define ADDRESS(name) , &name
    FASTPATH_OBJECTS(LOCAL)
    static char *kwlist[] = {"kernel", "tab_addr", "matrices", FASTPATH_OBJECTS(NAME) NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "KK(nnnn)OOOOOOOOOOOO", kwlist, &kernel, &tab_addr, &m_vi, &m_vf,
                                     &m_vn, &m_vids FASTPATH_OBJECTS(ADDRESS)))
        return -1;
#undef LOCAL
#undef NAME
#undef ADDRESS
    if (!PyDict_CheckExact(viewer_codes) || !PyDict_CheckExact(viewer_ids) || !PyDict_CheckExact(room_ids) ||
        !PyDict_CheckExact(string_ids) || !PyDict_CheckExact(cat_codes)) {
        PyErr_SetString(PyExc_TypeError, "FastPath: the lookup tables must be dicts");
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
    PyObject *field_names[9] = {s_type, s_ts, s_room, s_viewer, s_item, s_category, s_price, s_amount, s_text};
    for (int i = 0; i < 9; i++)
        self->event_slots[i] = PyType_Check(event_type) ? slot_offset((PyTypeObject *)event_type, field_names[i]) : -1;
    self->due_slot = slot_offset(Py_TYPE(retention), s_due);
#define KEEP(name) Py_INCREF(name); Py_XSETREF(self->name, name);
    FASTPATH_OBJECTS(KEEP)
#undef KEEP
    return 0;
}

/* a float (exactly: no subclass, as engine.py's ``type(x) is float``) that is finite */
static inline int finite_float(PyObject *o, double *out) {
    if (!PyFloat_CheckExact(o))
        return 0;
    *out = PyFloat_AS_DOUBLE(o);
    return isfinite(*out);
}

/* a float (exactly) that is within (-NUM_MAX, NUM_MAX) */
static inline int num_in_range(PyObject *o, double *out) {
    if (!PyFloat_CheckExact(o))
        return 0;
    *out = PyFloat_AS_DOUBLE(o);
    return *out > -NUM_MAX && *out < NUM_MAX;
}

/* a str that encodes as UTF-8 (no lone surrogate): ASCII is a flag read; otherwise the UTF-8
 * form is built (and cached in the str), which fails on a surrogate (the caller clears the error) */
static inline int encodable(PyObject *s) {
    return PyUnicode_IS_ASCII(s) || PyUnicode_AsUTF8AndSize(s, NULL) != NULL;
}

/* absent or None -> NULL; a str -> itself; anything else -> set *bad */
static inline PyObject *optional_str(PyObject *o, int *bad) {
    if (o == NULL || o == Py_None)
        return NULL;
    if (!PyUnicode_CheckExact(o))
        *bad = 1;
    return o;
}

static int64_t fast_ingest(FastPath *self, PyObject *event) {
    PyObject *t, *ts_o, *room_o, *viewer;
    PyObject *item = NULL, *cat = NULL, *price_o = NULL, *amount_o = NULL, *text = NULL;
    int bad = 0;
    int64_t result = FULL_PATH;

    if (PyDict_CheckExact(event)) { /* borrowed references: nothing below runs Python code */
        t = PyDict_GetItemWithError(event, s_type);
        ts_o = PyDict_GetItemWithError(event, s_ts);
        room_o = PyDict_GetItemWithError(event, s_room);
        viewer = PyDict_GetItemWithError(event, s_viewer);
        if (!t || !ts_o || !room_o || !viewer)
            goto done;
        if (PyDict_Size(event) != 4) { /* the four required keys only: nothing optional */
            item = PyDict_GetItemWithError(event, s_item);
            cat = PyDict_GetItemWithError(event, s_category);
            price_o = PyDict_GetItemWithError(event, s_price);
            amount_o = PyDict_GetItemWithError(event, s_amount);
            text = PyDict_GetItemWithError(event, s_text);
        }
    } else if ((PyObject *)Py_TYPE(event) == self->event_type) { /* an Event (msgspec Struct) */
        PyObject *fields[9]; /* borrowed, like the dict's */
        for (int i = 0; i < 9; i++) {
            if (!(fields[i] = read_slot(event, self->event_slots[i])))
                goto done;
        }
        t = fields[0], ts_o = fields[1], room_o = fields[2], viewer = fields[3];
        item = fields[4], cat = fields[5], price_o = fields[6], amount_o = fields[7], text = fields[8];
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
    }

    double ts, price = NAN, amount = NAN;
    if (!PyUnicode_CheckExact(t) || !finite_float(ts_o, &ts) || !(ts >= TS_MIN && ts < TS_MAX) ||
        !PyUnicode_CheckExact(room_o))
        goto done;
    item = optional_str(item, &bad);
    cat = optional_str(cat, &bad);
    text = optional_str(text, &bad); /* checked only: engine.py builds no FastPath for rules that read it */
    if (bad || (text && !encodable(text)))
        goto done;
    if (price_o != NULL && price_o != Py_None && !num_in_range(price_o, &price))
        goto done;
    if (amount_o != NULL && amount_o != Py_None && !num_in_range(amount_o, &amount))
        goto done;

    PyObject *code_o = PyDict_GetItemWithError(self->viewer_codes, t); /* room events: not there */
    if (!code_o)
        goto done;
    int64_t code = PyLong_AsLongLong(code_o);
    PyObject *room_s = PyDict_GetItemWithError(self->room_ids, room_o);
    if (!room_s)
        goto done;
    PyObject *item_s = PyDict_GetItemWithError(self->string_ids, item ? item : s_empty);
    if (!item_s)
        goto done;
    int64_t cat_code = 0;
    if (cat) {
        PyObject *c = PyDict_GetItemWithError(self->cat_codes, cat);
        if (!c && PyErr_Occurred())
            goto done;
        if (!c && !encodable(cat)) /* a declared category encodes (it came from the rules) */
            goto done;
        cat_code = c ? PyLong_AsLongLong(c) : -1; /* undeclared category: -1 */
    }
    PyObject *due = read_slot(self->retention, self->due_slot); /* a sweep point: the full path */
    if (!due || !PyFloat_CheckExact(due) || !(ts < PyFloat_AS_DOUBLE(due)))
        goto done;

    /* the viewer's slot: from the dense index for int ids in it (as the kernel's BY_VIEWER_ID
     * lookup does), else from the dict; not there: a new viewer, which Python interns */
    int64_t slot;
    if (vid >= 0) {
        slot = vids[vid];
    } else if (PyLong_CheckExact(viewer) || PyUnicode_CheckExact(viewer)) {
        PyObject *slot_o = PyDict_GetItemWithError(self->viewer_ids, viewer);
        slot = slot_o ? PyLong_AsLongLong(slot_o) : -1;
        vid = 0;
    } else {
        goto done;
    }
    if (slot < 0)
        goto done;
    prefetch_row(self->tab, self->m_vi, slot, sizeof(int64_t));
    prefetch_row(self->tab, self->m_vn, slot, sizeof(uint16_t));
    prefetch_row(self->tab, self->m_vf, slot, sizeof(double));

    self->a_slot = slot, self->a_vid = vid, self->a_code = code, self->a_ts = ts, self->a_cat = cat_code;
    self->a_room = PyLong_AsLongLong(room_s), self->a_item = PyLong_AsLongLong(item_s);
    self->a_price = price, self->a_amount = amount;
    if (PyErr_Occurred())
        goto done;
    result = self->kernel((int64_t)(uintptr_t)self->tab, slot, vid, self->a_room, code, ts, self->a_item, cat_code, price, amount,
                          -1, 0);
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
    return Py_BuildValue("LLLLdLLddL", (long long)self->a_slot, (long long)self->a_vid, (long long)self->a_room,
                         (long long)self->a_code, self->a_ts, (long long)self->a_item, (long long)self->a_cat,
                         self->a_price, self->a_amount, -1LL);
}

/* call(tab_addr, slot, vid, room, code, ts, item, cat, price, amount, text, index): the kernel
 * with explicit arguments (the full path's calls), as Numba's ingest_event takes them */
static PyObject *FastPath_call(FastPath *self, PyObject *const *args, Py_ssize_t nargs) {
    if (self->kernel == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FastPath: cleared");
        return NULL;
    }
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError, "call() takes 12 arguments (%zd given)", nargs);
        return NULL;
    }
    int64_t n[12];
    double f[12];
    for (int i = 0; i < 12; i++) {
        if (i == 5 || i == 8 || i == 9) {
            f[i] = PyFloat_AsDouble(args[i]);
        } else {
            n[i] = PyLong_AsLongLong(args[i]);
        }
        if (PyErr_Occurred())
            return NULL;
    }
    if (n[0] != (int64_t)(uintptr_t)self->tab) {
        PyErr_SetString(PyExc_ValueError, "call(): not this engine's table");
        return NULL;
    }
    return PyLong_FromLongLong(self->kernel(n[0], n[1], n[2], n[3], n[4], f[5], n[6], n[7], f[8], f[9], n[10], n[11]));
}

static PyMethodDef FastPath_methods[] = {
    {"ingest", (PyCFunction)FastPath_ingest, METH_O,
     "ingest($self, event, /)\n--\n\n"
     "Apply one event; return the actions of due timers, then of the event's rules (list[Action]).\n\n"
     "Engine.ingest in C: the common event in one call. Raises EventError (state untouched) on a\n"
     "malformed event, ConcurrentUseError when another thread is inside a call of this engine."},
    {"last_args", (PyCFunction)FastPath_last_args, METH_NOARGS,
     "the last kernel call's (slot, vid, room, code, ts, item, cat, price, amount, text)"},
    {"call", (PyCFunction)(void (*)(void))FastPath_call, METH_FASTCALL,
     "call(tab_addr, slot, vid, room, code, ts, item, cat, price, amount, text, index) -> kernel result"},
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
    INTERN(s_type, "type") INTERN(s_ts, "ts") INTERN(s_room, "room") INTERN(s_viewer, "viewer")
    INTERN(s_item, "item") INTERN(s_category, "category") INTERN(s_price, "price") INTERN(s_amount, "amount")
    INTERN(s_text, "text") INTERN(s_due, "due") INTERN(s_empty, "")
#undef INTERN
    if (PyType_Ready(&FastPathType) < 0 || PyType_Ready(&GuardType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastpath_module);
    if (!m)
        return NULL;
    if (PyModule_AddObject(m, "TS_MIN", PyFloat_FromDouble(TS_MIN)) < 0 ||
        PyModule_AddObject(m, "TS_MAX", PyFloat_FromDouble(TS_MAX)) < 0 ||
        PyModule_AddObject(m, "NUM_MAX", PyFloat_FromDouble(NUM_MAX)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
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
