/**
 * An evidence folder exactly as FileEvidenceLog wrote it before appends were batched under the lock (records 1 and 2
 * in one append, 3, then 4 on the next day, from oldFolderInput; the index mark left out). Kept to prove the format.
 */
export const OLD_EVIDENCE_FOLDER: Record<string, string> = {
  'anchors/2026-03-10.json':
    '{\n  "day": "2026-03-10",\n  "firstSeq": 1,\n  "lastSeq": 3,\n  "count": 3,\n  "firstPrevHash": "0000000000000000000000000000000000000000000000000000000000000000",\n  "lastHash": "ea6351659f92360f732b1cf239551996982b77bb93de05d66d95e9b265250ced",\n  "sealedAt": 1773230400000,\n  "prevAnchorHash": "0000000000000000000000000000000000000000000000000000000000000000",\n  "hash": "f98e72b0dad9840f031a72deb1d7daf6ef22f08dd629a6c06f6d024c05c774fb"\n}\n',
  'index/domain/08.tsv': 'partner0.test\t2026-03-10\n',
  'index/domain/6d.tsv': 'partner1.test\t2026-03-10\npartner1.test\t2026-03-11\n',
  'index/domain/9e.tsv': 'partner2.test\t2026-03-10\n',
  'index/message/78.tsv': '%3Cm2%40clinic.test%3E\t2026-03-10\n',
  'index/message/96.tsv': '%3Cm1%40clinic.test%3E\t2026-03-10\n',
  'index/message/b4.tsv': '%3Cm4%40clinic.test%3E\t2026-03-11\n',
  'index/message/f6.tsv': '%3Cm3%40clinic.test%3E\t2026-03-10\n',
  'index/queue/32.tsv': 'Q1\t2026-03-10\n',
  'index/queue/68.tsv': 'Q4\t2026-03-11\n',
  'index/queue/88.tsv': 'Q2\t2026-03-10\n',
  'index/queue/9f.tsv': 'Q3\t2026-03-10\n',
  'index/recipient/37.tsv': 'user2%40partner2.test\t2026-03-10\n',
  'index/recipient/3d.tsv': 'user1%40partner1.test\t2026-03-10\n',
  'index/recipient/53.tsv': 'user3%40partner0.test\t2026-03-10\n',
  'index/recipient/ae.tsv': 'user4%40partner1.test\t2026-03-11\n',
  'segments/2026-03-10.jsonl':
    '{"kind":"recipient-outcome","at":1773143999000,"queueId":"Q1","messageId":"<m1@clinic.test>","recipient":"user1@partner1.test","sender":"Sender@Clinic.test","actor":"relay","data":{"outcome":"delivered","tls":{"version":"TLSv1.3"},"n":1,"ü":[1,null,{"b":"x","a":"é"}]},"seq":1,"day":"2026-03-10","loggedAt":1773144000000,"prevHash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"276bd58313735330414ffff1314d4b8ef25cdd9fd793082e9cc11c988a0dcbc5"}\n{"kind":"recipient-outcome","at":1773143999000,"queueId":"Q2","messageId":"<m2@clinic.test>","recipient":"user2@partner2.test","sender":"Sender@Clinic.test","actor":"relay","data":{"outcome":"delivered","tls":{"version":"TLSv1.3"},"n":2,"ü":[1,null,{"b":"x","a":"é"}]},"seq":2,"day":"2026-03-10","loggedAt":1773144000000,"prevHash":"276bd58313735330414ffff1314d4b8ef25cdd9fd793082e9cc11c988a0dcbc5","hash":"5bd291c7d607a8622a86dee77cd5381a82c27ec76f57feb1751a96efbea998b5"}\n{"kind":"recipient-outcome","at":1773143999000,"queueId":"Q3","messageId":"<m3@clinic.test>","recipient":"user3@partner0.test","sender":"Sender@Clinic.test","actor":"relay","data":{"outcome":"delivered","tls":{"version":"TLSv1.3"},"n":3,"ü":[1,null,{"b":"x","a":"é"}]},"seq":3,"day":"2026-03-10","loggedAt":1773144000000,"prevHash":"5bd291c7d607a8622a86dee77cd5381a82c27ec76f57feb1751a96efbea998b5","hash":"ea6351659f92360f732b1cf239551996982b77bb93de05d66d95e9b265250ced"}\n',
  'segments/2026-03-11.jsonl':
    '{"kind":"recipient-outcome","at":1773230399000,"queueId":"Q4","messageId":"<m4@clinic.test>","recipient":"user4@partner1.test","sender":"Sender@Clinic.test","actor":"relay","data":{"outcome":"delivered","tls":{"version":"TLSv1.3"},"n":4,"ü":[1,null,{"b":"x","a":"é"}]},"seq":4,"day":"2026-03-11","loggedAt":1773230400000,"prevHash":"ea6351659f92360f732b1cf239551996982b77bb93de05d66d95e9b265250ced","hash":"bbcb0c5f3b3a482538146310d7a5f17d2cba361e4e252a610663d8f7216153cf"}\n',
};

/** The inputs that folder was written from: record n at the clock's time less a second. */
export function oldFolderInput(n: number, now: number) {
  return {
    kind: 'recipient-outcome' as const,
    at: now - 1000,
    queueId: `Q${n}`,
    messageId: `<m${n}@clinic.test>`,
    recipient: `user${n}@Partner${n % 3}.test`,
    sender: 'Sender@Clinic.test',
    actor: 'relay',
    data: { outcome: 'delivered', tls: { version: 'TLSv1.3' }, n, ü: [1, null, { b: 'x', a: 'é' }] },
  };
}
