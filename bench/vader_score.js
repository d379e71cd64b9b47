// vader_score.js - the VADER side of bench/sentiment.sh: reads an id<TAB>rating<TAB>text file and
// writes one VADER compound score per line (the peer's scores for `amuse sentiment eval --scores`),
// then prints {"ms_per_1000": ...} for the scoring loop alone (not node's start or the file read).
// It does not compute any figures: amuse's eval does that for both sides with one implementation.
'use strict';
const fs = require('fs');
const vader = require('vader-sentiment');

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node vader_score.js FILE.tsv SCORES.txt');
  process.exit(2);
}
const texts = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0)
  .map((l) => l.split('\t').slice(2).join('\t').replace(/\r$/, ''));
const t0 = process.hrtime.bigint();
const scores = texts.map((t) => vader.SentimentIntensityAnalyzer.polarity_scores(t).compound);
const ns = Number(process.hrtime.bigint() - t0);
fs.writeFileSync(output, scores.map((s) => String(s)).join('\n') + '\n');
console.log(JSON.stringify({ snippets: texts.length, ms_per_1000: ns / 1e6 * 1000 / texts.length }));
