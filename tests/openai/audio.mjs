// audio.mjs - the official openai npm client, unchanged, on amuse serve's /v1/audio/transcriptions.
// usage: node audio.mjs <base URL ending in /v1> <infer key> <voice model> <word-vector model>
//                       <WAV of "jump"> <a file that is not audio>
// Prints one "ok ..." or "FAIL ..." line per check and exits non-zero if any failed.
import fs from "node:fs";
import OpenAI from "openai";

const [baseURL, apiKey, model, wordsModel, jumpWav, notAudio] = process.argv.slice(2);
let failed = 0;
const check = (name, cond, detail) => {
  if (cond) console.log(`ok   openai client: ${name}`);
  else { failed++; console.log(`FAIL openai client: ${name}: ${detail}`); }
};

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
try {
  const t = await client.audio.transcriptions.create({ file: fs.createReadStream(jumpWav), model });
  check(`audio.transcriptions.create({file, model}) = ${JSON.stringify(t)}`,
        t.text === "jump", JSON.stringify(t));

  const text = await client.audio.transcriptions.create({ file: fs.createReadStream(jumpWav), model,
                                                          response_format: "text" });
  check(`response_format "text" gives the string ${JSON.stringify(text)}`,
        typeof text === "string" && text.trim() === "jump", JSON.stringify(text));

  const v = await client.audio.transcriptions.create({ file: fs.createReadStream(jumpWav), model,
                                                       response_format: "verbose_json",
                                                       temperature: 0, language: "en" });
  check(`response_format "verbose_json": duration ${v.duration}, label ${v.label}`,
        v.task === "transcribe" && v.text === "jump" && v.duration > 0.2 && v.duration <= 1.02 &&
        v.label === "jump" && Array.isArray(v.events) && v.events.length === 1 &&
        v.events[0].word === "jump", JSON.stringify(v));

  try {
    await client.audio.transcriptions.create({ file: fs.createReadStream(notAudio), model });
    check("a file that is not audio raises BadRequestError", false, "no error");
  } catch (e) {
    check(`a file that is not audio raises BadRequestError: ${e.message}`,
          e instanceof OpenAI.BadRequestError && e.status === 400 && /not audio/.test(e.message),
          `${e.constructor.name}: ${e.message}`);
  }
  try {
    await client.audio.transcriptions.create({ file: fs.createReadStream(jumpWav), model: wordsModel });
    check("a model that is not a voice model raises BadRequestError", false, "no error");
  } catch (e) {
    check(`a model that is not a voice model raises BadRequestError: ${e.message}`,
          e instanceof OpenAI.BadRequestError && e.status === 400 &&
          e.message.includes(`model '${wordsModel}' is a word2vec model, not a voice model ` +
                           "(POST /v1/audio/transcriptions needs one"),
          `${e.constructor.name}: ${e.message}`);
  }
} catch (e) {
  failed++;
  console.log(`FAIL openai client: unexpected ${e.constructor.name}: ${e.message}`);
}
process.exit(failed ? 1 : 0);
