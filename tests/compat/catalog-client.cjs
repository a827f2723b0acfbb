// Drives a Callboard catalog with Backstage's own client library,
// @backstage/catalog-client, and checks every answer.
//
// Usage: CALLBOARD_TOKEN=<token> node catalog-client.cjs <base-url> <file-to-register>
// (NODE_PATH must point at a node_modules holding the package; the token is
// the one catalog writes need, passed the way Backstage passes it.)
'use strict';

const assert = require('node:assert/strict');
const { CatalogClient } = require('@backstage/catalog-client');

const [baseUrl, newFile] = process.argv.slice(2);
const token = process.env.CALLBOARD_TOKEN;
const auth = { token };
// With CALLBOARD_READ_TOKEN set (a portal where reads need sign-in too),
// every call carries that token unless it names its own, as a Backstage
// app's fetchApi adds the user's token; `anon` never sends one.
const readToken = process.env.CALLBOARD_READ_TOKEN;
const withToken = (url, init = {}) => {
  const headers = new Headers(init.headers);
  if (readToken && !headers.has('authorization')) headers.set('authorization', `Bearer ${readToken}`);
  return fetch(url, { ...init, headers });
};
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => baseUrl },
  fetchApi: { fetch: withToken },
});
const anon = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => baseUrl },
  fetchApi: { fetch: (...args) => fetch(...args) },
});

const names = items => items.map(e => e.metadata.name).sort();
const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check('getEntities with filter, fields and order', async () => {
  const all = await client.getEntities();
  assert.equal(all.items.length, 13);
  const { items } = await client.getEntities({
    filter: [{ kind: 'component', 'spec.lifecycle': 'production' }],
    fields: ['kind', 'metadata.name'],
    order: { field: 'metadata.name', order: 'desc' },
  });
  assert.deepEqual(items.map(e => e.metadata.name), ['payments', 'checkout-web', 'checkout-service']);
  assert.deepEqual(Object.keys(items[0]).sort(), ['kind', 'metadata']);
  const or = await client.getEntities({ filter: [{ kind: 'api' }, { kind: 'resource' }] });
  assert.deepEqual(names(or.items), ['checkout-api', 'orders-db']);
  const { CATALOG_FILTER_EXISTS } = require('@backstage/catalog-client');
  const exists = await client.getEntities({ filter: { kind: 'component', 'spec.consumesApis': CATALOG_FILTER_EXISTS } });
  assert.deepEqual(names(exists.items), ['checkout-web']);
  const paged = await client.getEntities({ filter: { kind: 'component' }, order: { field: 'metadata.name', order: 'asc' }, offset: 1, limit: 2 });
  assert.deepEqual(paged.items.map(e => e.metadata.name), ['checkout-web', 'label-printer']);
});

check('queryEntities with cursors, totalItems and fullTextFilter', async () => {
  const first = await client.queryEntities({
    filter: { kind: 'component' },
    orderFields: { field: 'metadata.name', order: 'asc' },
    limit: 3,
  });
  assert.equal(first.totalItems, 4);
  assert.deepEqual(first.items.map(e => e.metadata.name), ['checkout-service', 'checkout-web', 'label-printer']);
  assert.ok(first.pageInfo.nextCursor);
  const second = await client.queryEntities({ cursor: first.pageInfo.nextCursor, limit: 3 });
  assert.deepEqual(second.items.map(e => e.metadata.name), ['payments']);
  assert.equal(second.pageInfo.nextCursor, undefined);
  assert.ok(second.pageInfo.prevCursor);
  const back = await client.queryEntities({ cursor: second.pageInfo.prevCursor, limit: 3 });
  assert.deepEqual(back.items.map(e => e.metadata.name), ['checkout-service', 'checkout-web', 'label-printer']);

  const text = await client.queryEntities({ fullTextFilter: { term: 'checkout', fields: ['metadata.name'] } });
  assert.deepEqual(names(text.items), ['checkout-api', 'checkout-service', 'checkout-web']);
  assert.equal(text.totalItems, 3);

  // predicate queries go through POST /entities/by-query, cursors included
  const q1 = await client.queryEntities({ query: { $all: [{ kind: 'component' }, { 'metadata.tags': { $contains: 'java' } }] }, limit: 1 });
  assert.equal(q1.totalItems, 2);
  const q2 = await client.queryEntities({ cursor: q1.pageInfo.nextCursor, limit: 1 });
  assert.deepEqual(names([...q1.items, ...q2.items]), ['checkout-service', 'label-printer']);

  let streamed = 0;
  for await (const page of client.streamEntities({ pageSize: 5 })) streamed += page.length;
  assert.equal(streamed, 13);
});

check('getEntityByRef', async () => {
  const e = await client.getEntityByRef('component:default/checkout-web');
  assert.equal(e.spec.type, 'website');
  assert.ok(e.relations.some(r => r.type === 'ownedBy' && r.targetRef === 'group:default/team-a'));
  assert.equal(await client.getEntityByRef('component:default/nope'), undefined);
});

check('getEntitiesByRefs', async () => {
  const { items } = await client.getEntitiesByRefs({
    entityRefs: ['api:default/checkout-api', 'component:default/missing', 'user:default/alice'],
    fields: ['kind', 'metadata.name'],
  });
  assert.deepEqual(items, [
    { kind: 'API', metadata: { name: 'checkout-api' } },
    undefined,
    { kind: 'User', metadata: { name: 'alice' } },
  ]);
  const filtered = await client.getEntitiesByRefs({ entityRefs: ['api:default/checkout-api', 'user:default/alice'], filter: { kind: 'user' } });
  assert.equal(filtered.items[0], undefined);
  assert.equal(filtered.items[1].metadata.name, 'alice');
});

check('getEntityAncestors', async () => {
  const a = await client.getEntityAncestors({ entityRef: 'component:finance/payments' });
  assert.equal(a.rootEntityRef, 'component:finance/payments');
  assert.equal(a.items.length, 3);
  assert.deepEqual(a.items[0].parentEntityRefs, ['location:default/more']);
});

check('getEntityFacets', async () => {
  const { facets } = await client.getEntityFacets({ facets: ['kind', 'spec.type'], filter: { kind: 'component' } });
  assert.deepEqual(facets.kind, [{ value: 'Component', count: 4 }]);
  assert.deepEqual(facets['spec.type'], [{ value: 'service', count: 3 }, { value: 'website', count: 1 }]);
  const byPredicate = await client.getEntityFacets({ facets: ['spec.lifecycle'], query: { kind: 'component' } });
  assert.deepEqual(byPredicate.facets['spec.lifecycle'], [{ value: 'production', count: 3 }, { value: 'experimental', count: 1 }]);
});

let added;
check('addLocation (dry run, then for real)', async () => {
  // Writes without a token are refused, with a token that is not valid too (Backstage answers 401).
  await assert.rejects(anon.addLocation({ type: 'file', target: newFile }), e => e.response?.status === 401);
  await assert.rejects(anon.addLocation({ type: 'file', target: newFile }, { token: 'wrong' }), e => e.response?.status === 401);
  const dry = await client.addLocation({ type: 'file', target: newFile, dryRun: true }, auth);
  assert.equal(dry.exists, false);
  assert.ok(dry.entities.some(e => e.metadata.name === 'newcomer'));
  assert.equal(await client.getEntityByRef('component:default/newcomer'), undefined);
  added = await client.addLocation({ type: 'file', target: newFile }, auth);
  assert.equal(added.location.target, newFile);
  assert.ok(added.entities.some(e => e.metadata.name === 'newcomer'));
  await assert.rejects(client.addLocation({ type: 'file', target: newFile }, auth), e => e.response?.status === 409);
});

check('getLocations and getLocationById', async () => {
  const { items } = await client.getLocations();
  assert.equal(items.length, 2);
  assert.ok(items.some(l => l.id === added.location.id && l.type === 'file'));
  const one = await client.getLocationById(added.location.id);
  assert.deepEqual(one, added.location);
  assert.equal(await client.getLocationById('00000000-0000-0000-0000-000000000000'), undefined);
  const byEntity = await client.getLocationByEntity('component:default/newcomer');
  assert.equal(byEntity.id, added.location.id);
});

check('removeLocationById', async () => {
  await client.removeLocationById(added.location.id, auth);
  assert.equal(await client.getLocationById(added.location.id), undefined);
  assert.equal(await client.getEntityByRef('component:default/newcomer'), undefined);
});

check('removeEntityByUid and refreshEntity', async () => {
  const db = await client.getEntityByRef('resource:default/orders-db');
  await assert.rejects(anon.removeEntityByUid(db.metadata.uid), e => e.response?.status === 401);
  await client.removeEntityByUid(db.metadata.uid, auth);
  assert.equal(await client.getEntityByRef('resource:default/orders-db'), undefined);
  await client.refreshEntity('component:default/checkout-web', auth);
  const back = await client.getEntityByRef('resource:default/orders-db');
  assert.equal(back.metadata.name, 'orders-db');
});

check('validateEntity', async () => {
  const ok = await client.validateEntity(
    { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'fine' }, spec: { type: 'service', lifecycle: 'production', owner: 'team-a' } },
    'url:https://example.com/catalog-info.yaml',
  );
  assert.deepEqual(ok, { valid: true });
  const bad = await client.validateEntity(
    { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'no good' }, spec: { type: 'service', owner: 'team-a' } },
    'url:https://example.com/catalog-info.yaml',
  );
  assert.equal(bad.valid, false);
  assert.ok(bad.errors.some(e => e.message.includes('"metadata.name" is not valid')), JSON.stringify(bad.errors));
});

if (readToken) {
  check('reads without a token are refused where the policy requires one', async () => {
    await assert.rejects(anon.getEntities(), e => e.response?.status === 401);
    await assert.rejects(anon.getEntityByRef('component:default/payments'), e => e.response?.status === 401);
    await assert.rejects(anon.getEntities({}, { token: 'not-a-token' }), e => e.response?.status === 401);
  });
}

(async () => {
  let failed = 0;
  for (const [name, fn] of checks) {
    try {
      await fn();
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n${e.stack || e}`);
    }
  }
  console.log(`${checks.length - failed}/${checks.length} client checks passed`);
  process.exit(failed ? 1 : 0);
})();
