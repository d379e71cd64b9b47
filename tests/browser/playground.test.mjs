// playground.test.mjs - the playground page of a running `amuse serve`, in Debian's chromium driven
// by playwright-core (tests/cli_playground.sh starts the server and calls this).
//
// usage: node playground.test.mjs <base URL> <admin key> <infer key> <image.png> <expected label>
//                                 <image model> <words model> [screenshot.png]
// Prints "ok ..." / "FAIL ..." per check and "N passed, M failed"; exits 1 on any failure.
// Every wait has a timeout (AMUSE_BROWSER_TIMEOUT_MS, default 20000 per step).
// With AMUSE_VOICE_MODEL and AMUSE_VOICE_WAV set, chromium's fake microphone plays that WAV (in a
// loop) and the voice panel must show the command it says (AMUSE_VOICE_WORD).
import { chromium } from 'playwright-core';

const [base, adminKey, inferKey, png, expected, imageModel, wordsModel, shot] =
  process.argv.slice(2);
if (!wordsModel) {
  console.error('usage: node playground.test.mjs URL ADMIN_KEY INFER_KEY IMAGE.png LABEL ' +
                'IMAGE_MODEL WORDS_MODEL [SCREENSHOT.png]');
  process.exit(2);
}
const STEP_MS = Number(process.env.AMUSE_BROWSER_TIMEOUT_MS || 20000);
const CHROMIUM = process.env.AMUSE_CHROMIUM || '/usr/bin/chromium';
const VOICE_MODEL = process.env.AMUSE_VOICE_MODEL;
const VOICE_WAV = process.env.AMUSE_VOICE_WAV;
const VOICE_WORD = process.env.AMUSE_VOICE_WORD;
// The fake microphone: no permission prompt, a fake device, and the file as its sound.
const MEDIA_ARGS = VOICE_WAV ? ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${VOICE_WAV}`, '--autoplay-policy=no-user-gesture-required'] : [];

let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail === undefined ? '' : ': ' + detail}`);
  }
}
async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, String(e && e.message ? e.message : e).split('\n')[0]);
  }
}

// What the server offers, asked directly (so the expectations hold before and after the /v1
// routes exist on this branch).
async function status(path, key) {
  const r = await fetch(base + path, { headers: key ? { Authorization: 'Bearer ' + key } : {} });
  return { status: r.status, body: await r.text() };
}

// launch() gives the browser a fresh temporary profile (its own --user-data-dir), removed on close.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  timeout: 60000,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-quic', '--disable-dev-shm-usage', ...MEDIA_ARGS],
});
const pageErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => pageErrors.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) pageErrors.push('console: ' + m.text());
  });
  // Only the server under test: anything else the page tries to load is a failure.
  const foreign = [];
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(base + '/') || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
    foreign.push(u);
    return route.abort();
  });

  await step('the page loads without a key', async () => {
    const resp = await page.goto(base + '/', { waitUntil: 'load' });
    check('GET / is the playground (200, text/html, no-cache)',
      resp.status() === 200 && /text\/html/.test(resp.headers()['content-type']) &&
      resp.headers()['cache-control'] === 'no-cache',
      `${resp.status()} ${resp.headers()['content-type']} ${resp.headers()['cache-control']}`);
    check('title', (await page.title()) === 'amuse playground', await page.title());
    await page.waitForSelector('#server-panel[data-state="no-key"]');
    check('health shows ready without a key', (await page.textContent('#health')) === 'ready',
      await page.textContent('#health'));
    check('without a key the page asks for one', /Paste an API key/.test(await page.textContent('#models-note')));
  });

  await step('a wrong key shows an error', async () => {
    await page.fill('#key', 'amuse_000000000000_thisisnotakeythisisnotakeythisisnotakey00000');
    await page.click('#key-use');
    await page.waitForSelector('#server-panel[data-state="error"]');
    const msg = await page.textContent('#server-error');
    check('wrong key: the Server panel shows the 401 and the server\'s message',
      /HTTP 401: missing, unknown or revoked API key/.test(msg), msg);
    await page.fill('#image-model', imageModel);
    await page.setInputFiles('#image-file', png);
    await page.waitForSelector('#image-panel[data-state="error"]');
    const err = await page.textContent('#image-error');
    check('wrong key: classifying shows the 401', /^HTTP 401: /.test(err) && !(await page.textContent('#top-label')), err);
  });

  await step('an infer key', async () => {
    await page.fill('#key', inferKey);
    await page.click('#key-use');
    await page.waitForSelector('#server-panel[data-state="done"]');
    const v1 = await status('/v1/models', inferKey);
    if (v1.status === 200) {
      check('infer key: models listed through /v1/models', (await page.textContent('#models')).includes(imageModel));
    } else {
      const note = await page.textContent('#models-note');
      check('infer key: a clear message that listing models needs an admin key here',
        /only to admin keys/.test(note) && await page.isHidden('#models'), note);
    }
  });

  await step('the admin key lists the models', async () => {
    await page.fill('#key', adminKey);
    await page.click('#key-use');
    await page.waitForSelector('#server-panel[data-state="done"]');
    await page.waitForSelector('#models tbody tr');
    const rows = await page.$$eval('#models tbody tr', (trs) => trs.map((tr) =>
      [...tr.cells].map((td) => td.textContent)));
    const img = rows.find((r) => r[0] === imageModel);
    const wv = rows.find((r) => r[0] === wordsModel);
    check('admin key: the image model is listed as an image model',
      img && img[2] === 'image' && img[3] === '28×28×1', JSON.stringify(rows));
    check('admin key: the word-vectors model is listed', wv && wv[2] === 'word vectors', JSON.stringify(rows));
    check('server name and version shown', /^amuse /.test(await page.textContent('#server-info')),
      await page.textContent('#server-info'));
  });

  await step('upload an image and see its label', async () => {
    await page.fill('#image-model', imageModel);
    await page.setInputFiles('#image-file', png); // the same file again: no change event
    await page.click('#image-run');
    await page.waitForSelector('#image-panel[data-state="done"]');
    const label = (await page.textContent('#top-label')).trim();
    check(`the shown label is amuse predict's ("${expected}")`, label === expected, label);
    const bars = await page.$$eval('#chart .bar-row', (rows) => rows.map((r) => ({
      label: r.dataset.label, value: Number(r.dataset.value), top: r.classList.contains('top'),
      width: r.querySelector('.bar-fill').getBoundingClientRect().width,
      track: r.querySelector('.bar-track').getBoundingClientRect().width })));
    const sum = bars.reduce((s, b) => s + b.value, 0);
    check('a bar per class (10), probabilities summing to 1',
      bars.length === 10 && Math.abs(sum - 1) < 1e-3, `${bars.length} bars, sum ${sum}`);
    check('the first, highlighted bar is the label, drawn to scale',
      bars[0] && bars[0].top && bars[0].label === expected &&
      Math.abs(bars[0].width - bars[0].value * bars[0].track) <= 2 &&
      bars.every((b, i) => i === 0 || b.value <= bars[i - 1].value), JSON.stringify(bars[0]));
    check('the image is previewed', await page.isVisible('#image-preview'));
    if (shot) await page.screenshot({ path: shot, fullPage: true });
  });

  await step('words', async () => {
    const route = await status(`/v1/words/similar?model=${wordsModel}&word=king&k=2`, adminKey);
    await page.fill('#words-model', wordsModel);
    await page.fill('#word', 'king');
    await page.fill('#words-k', '2');
    await page.click('#words-run');
    await page.waitForSelector('#words-panel[data-state="done"], #words-panel[data-state="error"]');
    if (route.status === 404 && /no route/.test(route.body)) {
      const msg = await page.textContent('#words-error');
      check('words: a clear message that this server has no word route',
        /this server has no word route/i.test(msg), msg);
    } else {
      const words = await page.$$eval('#neighbours .bar-row', (rows) => rows.map((r) => r.dataset.label));
      check('words: the neighbours of "king" are shown, "queen" first',
        words.length === 2 && words[0] === 'queen', JSON.stringify(words) + ' ' + route.status);
    }
    await page.fill('#word', 'zebra');
    await page.click('#words-run');
    await page.waitForSelector('#words-panel[data-state="error"]');
    check('words: an error for an unknown word or a missing route',
      /^(HTTP 4\d\d: |This server has no word route)/.test(await page.textContent('#words-error')),
      await page.textContent('#words-error'));
  });

  if (VOICE_MODEL && VOICE_WAV) await step('voice', async () => {
    const rows = await page.$$eval('#models tbody tr', (trs) => trs.map((tr) =>
      [...tr.cells].map((td) => td.textContent)));
    const vm = rows.find((r) => r[0] === VOICE_MODEL);
    check('voice: the voice model is listed as a voice model',
      vm && vm[2] === 'voice' && vm[3] === '1000 ms at 16000 Hz', JSON.stringify(vm));
    check('voice: the panel offers it', (await page.inputValue('#voice-model')) === VOICE_MODEL,
      await page.inputValue('#voice-model'));
    // Twice the fake file's length: whatever the loop's phase, one whole word is in it.
    await page.fill('#voice-seconds', '3');
    await page.click('#voice-record');
    await page.waitForSelector('#voice-panel[data-state="done"], #voice-panel[data-state="error"]',
      { timeout: 3 * STEP_MS });
    const words = (await page.textContent('#voice-words')).trim();
    const err = await page.textContent('#voice-error');
    check(`voice: the page shows the command the fake microphone said ("${VOICE_WORD}")`,
      words.split(' ').includes(VOICE_WORD) && words.split(' ').every((w) => w === VOICE_WORD),
      `"${words}" ${err}`);
    const events = await page.$$eval('#voice-events .bar-row', (r) => r.map((e) => e.dataset.label));
    check('voice: one bar per event, each the word', events.length >= 1 &&
      events.every((w) => w === VOICE_WORD), JSON.stringify(events));
    check('voice: the note says a 3 s recording was sent as 16 kHz WAV',
      /^3\.00 s recorded at \d+ Hz, sent as 16 kHz mono WAV/.test(await page.textContent('#voice-note')),
      await page.textContent('#voice-note'));
    await page.fill('#voice-model', wordsModel); // not a voice model: the server's 400
    await page.fill('#voice-seconds', '0.5');
    await page.click('#voice-record');
    await page.waitForSelector('#voice-panel[data-state="error"]', { timeout: 3 * STEP_MS });
    check('voice: a model that is not a voice model shows the server\'s 400',
      /^HTTP 400: model 'words' is a word2vec model, not a voice model \(POST \/v1\/audio\/transcriptions needs one/.test(await page.textContent('#voice-error')),
      await page.textContent('#voice-error'));
    await page.fill('#voice-model', VOICE_MODEL);
  });
  else console.log('note: AMUSE_VOICE_MODEL/AMUSE_VOICE_WAV not set; the voice panel was not tested');

  const writeModel = process.env.AMUSE_WRITE_MODEL;
  if (writeModel) await step('write', async () => {
    // The server's own unstreamed greedy text for the same request: the page must show it.
    const want = await page.evaluate(async ([key, model]) => {
      const r = await fetch('/v1/completions', {method: 'POST', headers: {Authorization: 'Bearer ' + key},
        body: JSON.stringify({model, prompt: 'twinkle twinkle', max_tokens: 24, temperature: 0})});
      return (await r.json()).choices[0].text;
    }, [adminKey, writeModel]);
    await page.fill('#write-model', writeModel);
    await page.fill('#write-prompt', 'twinkle twinkle');
    await page.fill('#write-max', '24');
    await page.fill('#write-temperature', '0');
    await page.click('#write-run');
    await page.waitForSelector('#write-panel[data-state="done"], #write-panel[data-state="error"]');
    const got = await page.textContent('#write-out');
    check('write: the streamed text is the server\'s greedy continuation',
      got === want && want.length > 0, `${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    check('write: the usage note counts 24 tokens',
      /^24 tokens \(length\), first after \d+ ms; prompt 15 tokens\.$/.test(await page.textContent('#write-note')),
      await page.textContent('#write-note'));
    check('write: the generator is listed in the models table as a generator',
      /generator/.test(await page.textContent('#models')));
    await page.fill('#write-model', 'words'); // not a generator: the server's 400
    await page.click('#write-run');
    await page.waitForSelector('#write-panel[data-state="error"]');
    check('write: a model that is not a generator shows the server\'s 400',
      /^HTTP 400: model 'words' is a word2vec model, not a text generator \(POST \/v1\/(chat\/)?completions needs one\)/.test(await page.textContent('#write-error')),
      await page.textContent('#write-error'));
  });
  else console.log('note: AMUSE_WRITE_MODEL not set; the write panel was not tested');

  const recModel = process.env.AMUSE_RECOMMEND_MODEL;
  const sentimentModel = process.env.AMUSE_SENTIMENT_MODEL;
  if (recModel) await step('for you', async () => {
    check('for you: the recommender is listed in the models table as a recommender',
      (await page.$$eval('#models tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) =>
        td.textContent)))).some((r) => r[0] === recModel && r[2] === 'recommender'));
    // The server's own answer for the same request: the page must show it, in order.
    const want = async (query) => (await page.evaluate(async ([key, q]) => {
      const r = await fetch('/v1/recommendations?' + q, {headers: {Authorization: 'Bearer ' + key}});
      return (await r.json()).data.map((d) => d.id);
    }, [adminKey, query]));
    const shown = () => page.$$eval('#foryou-list li', (lis) => lis.map((li) => li.dataset.id));
    await page.fill('#foryou-model', recModel);
    await page.dispatchEvent('#foryou-model', 'change');
    await page.waitForFunction(() => document.querySelectorAll('#foryou-users option').length > 0);
    check('for you: the user picker offers the model\'s users',
      (await page.$$eval('#foryou-users option', (os) => os.length)) === 12);
    await page.fill('#foryou-user', 'a2');
    await page.click('#foryou-run');
    await page.waitForSelector('#foryou-panel[data-state="done"]');
    const before = await shown();
    check('for you: a2\'s list is the server\'s, A2 first',
      JSON.stringify(before) === JSON.stringify(await want('model=' + recModel + '&user=a2&k=10')) &&
      before[0] === 'A2', JSON.stringify(before));
    const why = await page.textContent('#foryou-list li:first-child .rec-why');
    check('for you: the first item is explained', /^because you liked Action film \d$/.test(why), why);
    check('for you: the note says the history was folded in',
      /5 event\(s\) of user a2 folded in/.test(await page.textContent('#foryou-note')),
      await page.textContent('#foryou-note'));
    // Like the first drama on the list: the list changes to what the server gives with that like.
    const drama = before.find((id) => id.startsWith('B'));
    await page.click(`#foryou-list li[data-id="${drama}"] .rec-like`);
    await page.waitForFunction(() => /like\(s\) from this page/.test(document.querySelector('#foryou-note').textContent));
    await page.waitForSelector('#foryou-panel[data-state="done"]');
    const after = await shown();
    check('for you: a like changes the list to the server\'s answer with liked=',
      JSON.stringify(after) !== JSON.stringify(before) && !after.includes(drama) &&
      JSON.stringify(after) === JSON.stringify(await want(`model=${recModel}&user=a2&k=10&liked=${drama}`)),
      `${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    await page.fill('#foryou-user', 'someone-new');
    await page.click('#foryou-run');
    await page.waitForFunction(() => /cold start/.test(document.querySelector('#foryou-note').textContent));
    check('for you: an unknown user gets a cold start that says so',
      /popular with everyone/.test(await page.textContent('#foryou-list li:first-child .rec-why')),
      await page.textContent('#foryou-list'));
    await page.fill('#foryou-model', 'nope');
    await page.click('#foryou-run');
    await page.waitForSelector('#foryou-panel[data-state="error"]');
    check('for you: an unknown model shows the server\'s 404',
      /^HTTP 404: model 'nope' is not loaded \(GET \/v1\/models lists the models\)/.test(await page.textContent('#foryou-error')),
      await page.textContent('#foryou-error'));
    await page.fill('#foryou-model', recModel);
    if (sentimentModel) {
      await page.fill('#review-model', sentimentModel);
      await page.fill('#review-text', 'A warm, funny and beautifully acted film.');
      await page.click('#review-run');
      await page.waitForSelector('#foryou-panel[data-state="reviewed"]');
      check('review: a positive label and its score',
        (await page.textContent('#review-label')) === 'positive' &&
        /^score 0\.\d\d \(from -1 to 1\)$/.test(await page.textContent('#review-score')),
        `${await page.textContent('#review-label')} ${await page.textContent('#review-score')}`);
    }
  });
  else console.log('note: AMUSE_RECOMMEND_MODEL not set; the For you panel was not tested');

  await step('the key stays in the tab', async () => {
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('#server-panel[data-state="done"]');
    check('after a reload the key is still there (sessionStorage) and the models are listed',
      (await page.inputValue('#key')) === adminKey && (await page.textContent('#models')).includes(imageModel));
    const stored = await page.evaluate(() => ({ local: localStorage.length, cookie: document.cookie }));
    check('the key is not in localStorage or a cookie', stored.local === 0 && stored.cookie === '',
      JSON.stringify(stored));
  });

  check('no page errors or Content-Security-Policy violations', pageErrors.length === 0,
    pageErrors.join(' | '));
  check('nothing but the server under test was loaded', foreign.length === 0, foreign.join(' '));
} finally {
  await browser.close();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
