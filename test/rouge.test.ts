import { lcsIndices, porterStem, rougeScores, rougeTokens, summaryLevelLcs } from '../bin/rouge';

/*
 * Expected values are those of google-research/rouge `rouge_scorer_test.py`
 * (ground truth from ROUGE-1.5.5), on its own test data (`testdata/target.txt`,
 * `prediction.txt` first two lines and `pyrouge_files/*_multi.0.txt`): random
 * strings whose words end in "ing", "tion", "er", so stemming changes them.
 */
const TARGETS = [
  "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L",
  "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN",
];
const PREDICTIONS = [
  "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi",
  "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD",
];
const TARGET_MULTI = [
  TARGETS[0],
  TARGETS[1],
  "NhETebUbBk'er WOvoHMTjSRizKgH'vHiing Xu,hWxfs VkNE QhgKiLHE -HidivzoM.dO anhtion jbLQiSGDTCsuhREebUaKM dv J dVN tmbOT",
  "vMR HDm,xOAetion D,tion HJtodT.mHl UIv-p VjWH'BdyWjnfGU-OjT aEMdFICyLWfQMtion wEMfdOKing AwkeKbO 'DxqNOHBH qKtVvm OYJl mM",
].join('\n');
const PREDICTION_MULTI = [
  PREDICTIONS[0],
  PREDICTIONS[1],
  'xfs VkJE QhgKiLHE -HidivzoM.dO anhing jbLQiSGDTCsuhREebUaKM dv J',
  "VjWH'BdyWjnfGU-OjTNaEMdFICyLWfQMing wEMfdOKijg AwkeKbO 'DxqNO",
].join('\n');

const close = (actual: number, expected: number, places = 5) => expect(actual).toBeCloseTo(expected, places);

describe('ROUGE as rouge-score computes it', () => {
  it('ROUGE-1 and ROUGE-2 of the small documented cases', () => {
    const r1 = rougeScores('testing one two', 'testing').rouge1;
    close(r1.precision, 1);
    close(r1.recall, 1 / 3);
    close(r1.fmeasure, 1 / 2);
    const r2 = rougeScores('testing one two', 'testing one').rouge2;
    close(r2.precision, 1);
    close(r2.recall, 1 / 2);
    close(r2.fmeasure, 2 / 3);
    for (const s of Object.values(rougeScores('testing one two', ''))) expect(s).toEqual({ precision: 0, recall: 0, fmeasure: 0 });
  });

  it('ROUGE-1 and ROUGE-2 with stemming match ROUGE-1.5.5', () => {
    const [a, b] = [rougeScores(TARGETS[0]!, PREDICTIONS[0]!), rougeScores(TARGETS[1]!, PREDICTIONS[1]!)];
    close(a.rouge1.recall, 0.40741);
    close(a.rouge1.precision, 0.6875);
    close(a.rouge1.fmeasure, 0.51163);
    close(b.rouge1.recall, 0.42857);
    close(b.rouge1.precision, 0.69231);
    close(b.rouge1.fmeasure, 0.52941);
    close(a.rouge2.recall, 0.30769);
    close(a.rouge2.precision, 0.53333);
    close(a.rouge2.fmeasure, 0.39024);
    close(b.rouge2.recall, 0.29268);
    close(b.rouge2.precision, 0.48);
    close(b.rouge2.fmeasure, 0.36364);
  });

  it('without stemming the second pair scores lower, as in ROUGE-1.5.5', () => {
    const b = rougeScores(TARGETS[1]!, PREDICTIONS[1]!, false);
    close(b.rouge1.recall, 0.40476);
    close(b.rouge1.precision, 0.65385);
    close(b.rouge1.fmeasure, 0.5);
  });

  it('ROUGE-Lsum: the union LCS of each reference sentence, tokens counted once', () => {
    const s = summaryLevelLcs([['1', '2', '3', '4', '5']], [['1', '2', '6', '7', '8'], ['1', '3', '8', '9', '5']]);
    expect(s.recall).toBe(0.8);
    expect(s.precision).toBe(0.4);
    close(s.fmeasure, 0.5333, 3);
    const lsum = rougeScores('w1 w2 w3 w4 w5', 'w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5').rougeLsum;
    close(lsum.recall, 0.8);
    close(lsum.precision, 0.4);
    expect(rougeScores('w1 w2 w3 w4 w5', '/').rougeLsum.fmeasure).toBe(0);
    expect(rougeScores('', 'w1').rougeLsum.fmeasure).toBe(0);

    const multi = rougeScores(TARGET_MULTI, PREDICTION_MULTI).rougeLsum;
    close(multi.recall, 0.36538);
    close(multi.precision, 0.66667);
    close(multi.fmeasure, 0.47205);
  });

  it('reads back the same LCS as the reference', () => {
    expect(lcsIndices(['1', '2', '3', '4', '5'], ['2', '5', '3', '4'])).toEqual([1, 2, 3]);
    expect(lcsIndices(['1', '2', '3', '4', '5'], ['8', '9'])).toEqual([]);
  });

  it('tokenizes and stems like rouge-score with NLTK Porter', () => {
    expect(rougeTokens("The U.S. President's jets, flying 2,000 miles!")).toEqual(['the', 'u', 's', 'presid', 's', 'jet', 'fli', '2', '000', 'mile']);
    const cases: Record<string, string> = {
      caresses: 'caress', ponies: 'poni', ties: 'tie', running: 'run', hopping: 'hop', happy: 'happi', relational: 'relat',
      generalization: 'gener', agreed: 'agre', dying: 'die', skies: 'sky', conditional: 'condit', hopeful: 'hope', news: 'news',
      filing: 'file', sensibility: 'sensibl', controlling: 'control', electrical: 'electr',
    };
    for (const [word, stem] of Object.entries(cases)) expect([word, porterStem(word)]).toEqual([word, stem]);
  });
});
