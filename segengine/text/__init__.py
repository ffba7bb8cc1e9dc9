"""What comments mean: text predicates and intents, evaluated before the kernel.

A rules file's text predicates (``event.text matches 'regex'``, ``event.text contains
'word'``) and the intents it uses (``event.intent(NAME)``, ``comment:NAME`` event types) each
get a bit (:mod:`segengine.text.predicates`). Before the kernel runs, the engine turns an
event's text into one int64 (:class:`segengine.text.codes.TextCodes`): the bits of the
predicates that hold for it, above the text's string id, once per distinct text (a bounded
cache makes a repeated comment a dict lookup). The kernel tests bits; events without text read
the precomputed value of ``""``. Intents are found by one multi-pattern matcher built at load
(:mod:`segengine.text.matcher`) over the lexicon (:mod:`segengine.text.lexicon`).
"""
