#!/usr/bin/env bash
# Retrain the default models that ship in models/default/ (the server's default repository),
# from the committed recipes and Debian's data packages, so the shipped weights can be
# reproduced: the seed CNN and DNN on Fashion-MNIST, and English word vectors (word2vec.c's
# default CBOW, 5 epochs, words seen at least 20 times) on data/make_corpus.sh's corpus, and the
# review sentiment model on the train parts of data/reviews with those vectors and the VADER
# lexicon (data/lexicon; about 2 seconds, deterministic), the voice-command DNN and DS-CNN on
# data/make_voice.sh's synthesised clips, and the text generators (below).
# Takes about 40 minutes on 2 cores. Writes to a temporary directory, then replaces
# models/default/<model>/1 one model at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh dict-gcide bible-kjv-text bible-kjv fortunes fortunes-zh r-cran-janeaustenr
[ -x build/amuse ] || { cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)"; }
[ -s data/corpus/english.txt ] || data/make_corpus.sh data/corpus
tmp=$(mktemp -d models/.train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

build/amuse train models/fashion-cnn.json --output "$tmp/fashion-cnn" --seed 42
build/amuse train models/fashion-dnn.json --output "$tmp/fashion-dnn" --seed 42
for m in fashion-cnn fashion-dnn; do
  rm -rf "$tmp/$m/best"           # the final (best-epoch) weights are what ships
done

mkdir -p "$tmp/words-en"
build/amuse word2vec -train data/corpus/english.txt -output "$tmp/words-en/vectors.bin" \
  -binary 1 -size 100 -min-count 20 -threads 1 -seed 1
printf '{"type": "word2vec", "vectors": "vectors.bin",\n "description": "English word vectors: word2vec CBOW, 100 dimensions, 5 epochs on gcide + KJV + fortunes + Jane Austen (data/make_corpus.sh), words seen at least 20 times."}\n' \
  >"$tmp/words-en/config.json"

# Review sentiment (docs/BENCHMARKS.md): the default split (seed 1) and training options.
build/amuse sentiment train --data data/reviews --output "$tmp/sentiment-en" \
  --vectors "$tmp/words-en/vectors.bin" --lexicon data/lexicon/vader_lexicon.tsv --seed 1 \
  --description "English review sentiment: NB-scaled hashed word unigrams+bigrams, averaged words-en vectors and VADER lexicon valences, logistic regression, trained on the train parts of data/reviews (seed 1)"

# Voice commands: data/make_voice.sh's set (400 clips per class, seed 1, with babble and music
# backgrounds; about 5 minutes), the seed DNN and the DS-CNN, each until its validation accuracy
# stops improving for 8 epochs, on one thread (the same weights on any machine; docs/BENCHMARKS.md,
# "Voice commands").
[ -s data/voice/manifest.csv ] || data/make_voice.sh --per-class 400 --seed 1
build/amuse train models/voice-dnn.json --output "$tmp/voice-dnn" --seed 42 -t 1
build/amuse train models/voice-dscnn.json --output "$tmp/voice-dscnn" --seed 42 -t 1

# Text generators (amuse generate, the completion routes) from the corpora of data/make_text.sh:
# the poem and song character LMs, the couplet model and the seed's seq2seq on English line
# pairs. Sized to train in a few minutes each on 2 quiet cores (2-17 minutes each on 2 cores
# shared with other jobs); seq2seq-chars runs 10 of its recipe's 100 epochs on 1,200 pairs, so
# it ships under-trained.
[ -s data/text/poems-zh.txt ] || data/make_text.sh data/text
build/amuse train models/poems-zh.json --output "$tmp/poems-zh" --seed 42 -q
build/amuse train models/couplets-zh.json --output "$tmp/couplets-zh" --seed 42 -q -e 15
build/amuse train models/songs-en.json --output "$tmp/songs-en" --seed 42 -q
build/amuse train models/seq2seq-chars.json --output "$tmp/seq2seq-chars" --seed 42 -q -e 10 \
  --train-limit 1200

# What --resume would read is three copies of the weights: useful while training, not shipped.
rm -f "$tmp"/*/training_state.safetensors
for m in fashion-cnn fashion-dnn words-en sentiment-en voice-dnn voice-dscnn poems-zh couplets-zh \
    songs-en seq2seq-chars; do
  mkdir -p "models/default/$m"
  rm -rf "models/default/$m/1.old"
  [ -d "models/default/$m/1" ] && mv "models/default/$m/1" "models/default/$m/1.old"
  mv "$tmp/$m" "models/default/$m/1"
  rm -rf "models/default/$m/1.old"
done
echo "train-defaults: models/default/ updated" >&2
