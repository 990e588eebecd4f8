import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import STOPWORDS_ISO from 'stopwords-iso/stopwords-iso.json';
import { createSummarizer, type SummaryResult } from '../../lambda/core/summarize';
import { detectLanguage } from '../../lambda/core/summarize/language';
import { splitSentences } from '../../lambda/core/summarize/split-sentences';

/*
 * The same local news story written in German, French, Spanish, Chinese and
 * Japanese (test/fixtures/docs/news-*.txt): a headline, then five paragraphs
 * with the lead first, abbreviations, a bank's initials and a URL with a query.
 */
const DOCS = join(__dirname, '..', 'fixtures', 'docs');
const summarizer = createSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused' });
const read = (language: string) => readFileSync(join(DOCS, `news-${language}.txt`), 'utf8');
const summarize = (content: string, maxSentences = 3): Promise<SummaryResult> =>
  summarizer.summarize({ content: Buffer.from(content), contentType: 'text/plain' }, { maxSentences });

// A few function words of each language, named here so the test does not lean only on the list the code uses.
const FUNCTION_WORDS: Record<string, string[]> = {
  de: ['der', 'die', 'das', 'und', 'ist', 'von', 'mit', 'den', 'ein', 'eine', 'nicht', 'auch', 'über'],
  fr: ['le', 'la', 'les', 'des', 'une', 'est', 'que', 'qui', 'dans', 'pour', 'par', 'sur', 'avec'],
  es: ['el', 'los', 'las', 'que', 'por', 'una', 'del', 'con', 'para', 'pero', 'sus', 'como', 'entre'],
  zh: ['的', '是', '了', '在', '和', '他们', '这', '一个', '我们', '但是', '已经'],
  ja: ['の', 'は', 'が', 'を', 'に', 'で', 'と', 'した', 'ある', 'いる', 'こと', 'よう'],
};
const LISTS = STOPWORDS_ISO as unknown as Record<string, string[]>;

/** The lead: the first sentence after the headline. */
const LEADS: Record<string, string> = {
  de: 'Der Stadtrat von Riverstadt hat am Dienstagabend mit sieben zu zwei Stimmen beschlossen,',
  fr: 'Le conseil municipal de Riverville a voté mardi soir,',
  es: 'El ayuntamiento de Riverciudad aprobó el martes por la noche,',
  zh: '河城市议会周二晚上以七票赞成、两票反对通过决议，',
  ja: 'リバー市議会は火曜日の夜、',
};
const TOPICS: Record<string, string> = { de: 'brücke', fr: 'pont', es: 'puente', zh: '港口', ja: '大橋' };

describe.each(Object.keys(LEADS))('a news story in %s', (language) => {
  it('is recognized, summarized from its lead, with keywords that are not stopwords', async () => {
    const text = read(language);
    expect(detectLanguage(text)).toBe(language);
    const result = await summarize(text);
    expect(result.language).toBe(language);
    expect(result.sentences).toHaveLength(3);
    expect(result.sentences[0]!.startsWith(LEADS[language]!)).toBe(true);
    for (const sentence of result.sentences) expect(text.replace(/\s+/g, ' ')).toContain(sentence);

    expect(result.keywords.length).toBeGreaterThanOrEqual(5);
    expect(result.keywords).toContain(TOPICS[language]);
    const stopwords = new Set([...LISTS[language]!, ...FUNCTION_WORDS[language]!]);
    for (const keyword of result.keywords) {
      expect([keyword, stopwords.has(keyword)]).toEqual([keyword, false]);
      for (const word of keyword.split(' ')) expect([word, stopwords.has(word)]).toEqual([word, false]);
      expect([...keyword].length).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('sentence ends', () => {
  it('keeps German abbreviations, initials and URLs inside their sentence', () => {
    const sentences = splitSentences(read('de'), 'de');
    expect(sentences).toContain(
      'Nach ihrem Bericht wäre eine Sanierung z. B. der Fahrbahn und der Pfeiler kaum billiger als ein Neubau gewesen, d. h. die Stadt hätte viel Geld für eine nur kurze Verlängerung der Lebensdauer ausgegeben.',
    );
    expect(sentences).toContain(
      'Das Land übernimmt etwa die Hälfte der Kosten, den Rest finanziert die Stadt über Anleihen, die u. a. von der Sparkasse und der Bank J.P. Morgan gezeichnet werden.',
    );
    expect(sentences).toContain('Die neue Brücke soll rund 180 Mio. Euro kosten.');
    expect(sentences).toContain('Details zum Bauablauf stehen unter https://riverstadt.example/bruecke?abschnitt=bau&jahr=2026 im Netz.');
  });

  it('keeps Spanish and French titles of address inside their sentence', () => {
    const es = splitSentences(read('es'), 'es');
    expect(es).toContain(
      'La Sra. García, concejala de Hacienda, explicó que el nuevo puente costará unos 180 millones de euros.',
    );
    expect(es).toContain('El alcalde, el Sr. López, reconoció que la decisión no fue fácil.');
    expect(splitSentences('La delegación de EE. UU. llegó ayer. Se quedará una semana.', 'es')).toEqual([
      'La delegación de EE. UU. llegó ayer.',
      'Se quedará una semana.',
    ]);
    const fr = splitSentences(read('fr'), 'fr');
    expect(fr).toContain(
      "M. Dupont, adjoint chargé des finances, a précisé que le nouveau pont coûtera environ 180 millions d'euros.",
    );
    expect(fr).toContain('La région prendra en charge la moitié de la somme, et la ville empruntera le reste auprès de plusieurs banques, dont J.P. Morgan.');
    expect(fr).toContain('Mme Martin, la maire, a reconnu que la décision avait été difficile.');
    expect(fr).toContain('Le calendrier des travaux est publié sur https://riverville.example/pont?section=travaux&annee=2026 depuis mercredi.');
  });

  it('ends Chinese and Japanese sentences at full-width marks', () => {
    expect(splitSentences('东京是日本的首都。它很大！真的吗？是的。', 'zh')).toEqual(['东京是日本的首都。', '它很大！', '真的吗？', '是的。']);
    const ja = splitSentences(read('ja'), 'ja');
    expect(ja[0]).toBe('リバー市議会、港大橋の架け替えを決定');
    expect(ja[1]!.startsWith(LEADS.ja!) && ja[1]!.endsWith('可決した。')).toBe(true);
    expect(ja).toHaveLength(1 + 11);
  });

  it('keeps English initials and URL queries inside their sentence', () => {
    expect(splitSentences('J.P. Morgan raised its forecast. See https://example.com/search?q=tide&page=2 for the data! Shares rose.', 'en')).toEqual([
      'J.P. Morgan raised its forecast.',
      'See https://example.com/search?q=tide&page=2 for the data!',
      'Shares rose.',
    ]);
  });
});

describe('text without punctuation', () => {
  it('is cut into sentence-sized chunks, so a summary is not the whole text', async () => {
    const words = Array.from({ length: 300 }, (_, i) => `${['tide', 'harbor', 'boat', 'keeper', 'lamp'][i % 5]}${i % 7}`);
    const text = words.map((w, i) => (i % 23 === 22 ? `${w},` : w)).join(' ');
    const result = await summarize(text, 2);
    expect(result.sentences).toHaveLength(2);
    for (const sentence of result.sentences) expect(sentence.split(' ').length).toBeLessThanOrEqual(60);
  });
});
