import t from 'tap'
import { sqliteBatchDb } from './helpers/batch-db.js'
import { runQueueContract } from './queue-contract.js'
import { runLifecycleContract } from './lifecycle-contract.js'

runQueueContract(t, 'batch queue on sqlite', sqliteBatchDb)
runLifecycleContract(t, 'batch lifecycle on sqlite', sqliteBatchDb)
