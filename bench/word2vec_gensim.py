#!/usr/bin/python3
"""word2vec_gensim.py - the gensim side of bench/word2vec.sh (run with Debian's /usr/bin/python3).

  train <corpus> <out.bin> <epochs> <threads>   Word2Vec(corpus_file=..., sg=1, ...) with the
                                                benchmark's settings; prints "seconds <s>" for
                                                vocabulary building plus training (not the import
                                                or the save)
  train-fasttext <corpus> <out.bin> <epochs> <threads> [alpha]
                                                FastText(corpus_file=..., sg=1, min_n=3, max_n=6,
                                                bucket=2000000, alpha=0.05 (fastText's default
                                                learning rate), ...), the same settings otherwise;
                                                saved with save_facebook_model; same "seconds"
  eval <vectors.bin> <questions> <pairs>        gensim's own evaluate_word_analogies (restrict
                                                30000) and evaluate_word_pairs on any file (a
                                                fastText .bin through load_facebook_vectors), which
                                                also proves that gensim loads it; prints JSON
It does not time anything but training and does not write results: word2vec.sh does.
"""
import json
import logging
import sys
import time


def train(corpus, out, epochs, threads):
    from gensim.models import Word2Vec
    start = time.time()
    model = Word2Vec(corpus_file=corpus, vector_size=100, window=5, min_count=5, sg=1, hs=0,
                     negative=5, sample=1e-3, alpha=0.025, workers=threads, epochs=epochs)
    seconds = time.time() - start
    model.wv.save_word2vec_format(out, binary=True)
    print("seconds %.3f" % seconds)
    print("words %d" % model.corpus_total_words)


def train_fasttext(corpus, out, epochs, threads, alpha=0.05):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model
    start = time.time()
    model = FastText(corpus_file=corpus, vector_size=100, window=5, min_count=5, sg=1, hs=0,
                     negative=5, sample=1e-3, alpha=alpha, min_n=3, max_n=6, bucket=2000000,
                     workers=threads, epochs=epochs)
    seconds = time.time() - start
    save_facebook_model(model, out)
    print("seconds %.3f" % seconds)
    print("words %d" % model.corpus_total_words)


def evaluate(path, questions, pairs):
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == (793712314).to_bytes(4, "little"):
        kv = load_facebook_vectors(path)
    else:
        kv = KeyedVectors.load_word2vec_format(path, binary=True)
    score, sections = kv.evaluate_word_analogies(questions, restrict_vocab=30000,
                                                 case_insensitive=True)
    seen = sum(len(s["correct"]) + len(s["incorrect"]) for s in sections if s["section"] != "Total accuracy")
    pearson, spearman, oov = kv.evaluate_word_pairs(pairs, restrict_vocab=300000,
                                                    case_insensitive=True)
    print(json.dumps({"analogy": score, "analogy_seen": seen, "spearman": float(spearman[0]),
                      "pearson": float(pearson[0]), "oov": float(oov)}))


def main():
    logging.basicConfig(level=logging.WARNING)
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "train-fasttext":
        train_fasttext(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                       float(sys.argv[6]) if len(sys.argv) > 6 else 0.05)
    elif sys.argv[1] == "eval":
        evaluate(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: word2vec_gensim.py train|train-fasttext|eval ...")


if __name__ == "__main__":
    main()
