#!/usr/bin/env bash
# cli_word2vec_gensim.sh - `amuse word2vec -gensim 1`, the seed's gensim call
# Word2Vec(sentences, size=100, window=5, min_count=5, workers=4): the settings it trains with,
# explicit flags overriding it, and (when Debian's gensim is installed) that those settings are
# gensim's real defaults, read from Word2Vec's signature.
# usage: bash cli_word2vec_gensim.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for i in $(seq 1 50); do echo "cat dog mouse pet fur cat dog paw"; done > "$work/corpus.txt"
settings() { # flags... -> the "Settings:" line
  "$amuse" word2vec -train "$work/corpus.txt" -output "$work/v.bin" -binary 1 -debug 3 "$@" 2>&1 |
    grep '^Settings:' | sed 's/^Settings: //'
}

# The seed's call: size=100, window=5, min_count=5, workers=4 on top of gensim's defaults.
got=$(settings -gensim 1 -size 100 -window 5 -min-count 5 -threads 4)
want="cbow size 100 window 5 min-count 5 sample 0.001 negative 5 hs 0 iter 5 alpha 0.025 min-alpha 0.0001 threads 4 seed 1 (gensim defaults)"
[ "$got" = "$want" ] && echo "ok   seed call: $got" || fail "seed call: got '$got', want '$want'"
[ -s "$work/v.bin" ] || fail "no vectors written"

# Flags win over -gensim wherever they stand.
got=$(settings -cbow 0 -alpha 0.01 -gensim 1 -iter 2)
want="skip-gram size 100 window 5 min-count 5 sample 0.001 negative 5 hs 0 iter 2 alpha 0.01 min-alpha 0.0001 threads 3 seed 1 (gensim defaults)"
[ "$got" = "$want" ] && echo "ok   overrides: $got" || fail "overrides: got '$got', want '$want'"

# Without it, word2vec.c's defaults (CBOW at alpha 0.05, 12 threads, no min-alpha).
got=$(settings -iter 1)
want="cbow size 100 window 5 min-count 5 sample 0.001 negative 5 hs 0 iter 1 alpha 0.05 min-alpha 0 threads 12 seed 1"
[ "$got" = "$want" ] && echo "ok   word2vec.c defaults: $got" || fail "defaults: got '$got', want '$want'"

"$amuse" word2vec -train "$work/corpus.txt" -output "$work/x.bin" -gensim 2 2>"$work/err" &&
  fail "-gensim 2 accepted"
grep -q -- "-gensim" "$work/err" || fail "-gensim 2: $(cat "$work/err")"

# gensim's own defaults, where gensim is installed (CI need not have it).
if /usr/bin/python3 -c 'import gensim' 2>/dev/null; then
  gensim_line=$(/usr/bin/python3 - <<'PY'
import inspect
from gensim.models import Word2Vec
d = {k: v.default for k, v in inspect.signature(Word2Vec.__init__).parameters.items()}
print("%s size %d window %d min-count %d sample %g negative %d hs %d iter %d alpha %g min-alpha %g "
      "threads %d seed %d" % ("skip-gram" if d["sg"] else "cbow", d["vector_size"], d["window"],
      d["min_count"], d["sample"], d["negative"], d["hs"], d["epochs"], d["alpha"],
      d["min_alpha"], d["workers"], d["seed"]))
PY
)
  got=$(settings -gensim 1)
  [ "$got" = "$gensim_line (gensim defaults)" ] && echo "ok   matches gensim: $gensim_line" ||
    fail "gensim's defaults are '$gensim_line', -gensim 1 gives '$got'"
else
  echo "skip gensim is not installed"
fi

[ $failures -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
