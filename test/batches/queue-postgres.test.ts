import t from 'tap'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'
import { postgresBatchDb } from './helpers/batch-db.js'
import { runLifecycleContract } from './lifecycle-contract.js'
import { runQueueContract } from './queue-contract.js'

const serverUrl = testDatabaseUrl()

if (serverUrl === undefined) {
  t.test('batch queue on postgres', { skip: NO_POSTGRES_REASON }, async () => {})
} else {
  runQueueContract(t, 'batch queue on postgres', async (t) => postgresBatchDb(t, await freshDatabase(t, serverUrl)))
  runLifecycleContract(t, 'batch lifecycle on postgres', async (t) => postgresBatchDb(t, await freshDatabase(t, serverUrl)))
}
